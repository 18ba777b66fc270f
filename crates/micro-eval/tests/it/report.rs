use crate::common::{opposed, routed_model, static_model, Toy};
use micro_eval::{
    budget_sweep, evaluate, write_report, EvalOptions, NamedModel, Results, SweepOptions,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn results() -> Results {
    let cache = opposed(20, 30);
    let models = vec![
        NamedModel::new("micro", routed_model(2, 1.0)),
        NamedModel::new("static", static_model(2, vec![0.4, 0.0])),
    ];
    let methods = models
        .iter()
        .map(|m| {
            evaluate(
                &m.model,
                &cache,
                &EvalOptions {
                    label: Some(m.label.clone()),
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    let opts = SweepOptions {
        budgets: vec![0, 2, 5, 10],
        runs: 3,
        seed: 1,
        hyre_shots: 4,
    };
    let sweep = budget_sweep(&models, &cache, &opts, &Toy::default(), &|_| {}).unwrap();
    Results {
        title: "two opposed users".into(),
        source: Some("test cache".into()),
        methods,
        sweep: Some(sweep),
        ..Default::default()
    }
}

/// Shapes plotters drew: every figure must have many, not just a frame.
fn drawn_elements(svg: &str) -> usize {
    [
        "<rect",
        "<path",
        "<polyline",
        "<polygon",
        "<circle",
        "<line",
    ]
    .iter()
    .map(|t| svg.matches(t).count())
    .sum()
}

#[test]
fn the_report_writes_every_figure_with_drawn_elements() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&results(), dir.path()).unwrap();
    let names: Vec<String> = files
        .figures
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "methods.svg",
            "heads.svg",
            "router_weights.svg",
            "budget.svg",
            "budget_attributes.svg"
        ]
    );
    let html = std::fs::read_to_string(&files.index).unwrap();
    for (path, name) in files.figures.iter().zip(&names) {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name} is not a whole SVG document"
        );
        assert!(
            drawn_elements(&svg) >= 5,
            "{name} has only {} drawn elements",
            drawn_elements(&svg)
        );
        assert!(svg.contains("<text"), "{name} has no text");
        assert!(
            html.contains(&format!("src=\"{name}\"")),
            "index.html does not show {name}"
        );
    }
    // The heads heatmap: 2 heads + the routed mixture, 2 users: 6 value cells and 2 best-head frames.
    let heads = std::fs::read_to_string(dir.path().join("heads.svg")).unwrap();
    assert!(heads.matches("<rect").count() >= 8);
    let weights = std::fs::read_to_string(dir.path().join("router_weights.svg")).unwrap();
    assert!(
        weights.matches("<rect").count() >= 4 && weights.contains("0.731"),
        "router weights e/(1+e) = 0.731 not shown"
    );
    // Four rows (micro, static and their HyRe rows): two curves and two levels at least.
    let budget = std::fs::read_to_string(dir.path().join("budget.svg")).unwrap();
    assert!(budget.matches("<polyline").count() + budget.matches("<path").count() >= 4);
    assert!(
        budget.contains("micro+hyre"),
        "the legend names the HyRe row"
    );
    for needle in [
        "micro best head",
        "static+hyre",
        "± ",
        "two opposed users",
        "<table>",
    ] {
        assert!(html.contains(needle), "index.html lacks {needle:?}");
    }
}

#[test]
fn results_round_trip_and_every_accepted_form_loads() {
    let dir = tempfile::tempdir().unwrap();
    let r = results();
    r.save(&dir.path().join("results.json")).unwrap();
    assert_eq!(Results::load(dir.path()).unwrap(), r);
    assert_eq!(Results::load(&dir.path().join("results.json")).unwrap(), r);
    // A folder of bare reports (what `micro eval --json` writes per model) is merged.
    let bare = tempfile::tempdir().unwrap();
    for m in &r.methods {
        micro_eval::write_json(&bare.path().join(format!("{}.json", m.method)), m).unwrap();
    }
    micro_eval::write_json(&bare.path().join("sweep.json"), r.sweep.as_ref().unwrap()).unwrap();
    let merged = Results::load(bare.path()).unwrap();
    assert_eq!(merged.methods.len(), 2);
    assert_eq!(merged.sweep, r.sweep);
    let junk = bare.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("x.json"), "{\"hello\": 1}").unwrap();
    let err = Results::load(&junk).unwrap_err().to_string();
    assert!(
        err.contains("x.json") && err.contains("not a micro results file"),
        "{err}"
    );
    assert!(Results::load(&bare.path().join("missing.json")).is_err());
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
    .find(|p| p.is_file())
}

/// Screenshots `url` at 1200x2000 and returns the RGB pixels.
fn screenshot(chromium: &Path, url: &str, work: &Path) -> Vec<[u8; 3]> {
    let png_path = work.join("shot.png");
    let _ = std::fs::remove_file(&png_path);
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .args(["--window-size=1200,2000", url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let decoder =
        png::Decoder::new(std::fs::File::open(&png_path).expect("chromium wrote no screenshot"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected PNG colour type {:?}",
        info.color_type
    );
    buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn the_page_renders_in_headless_chromium() {
    if std::env::var("MICRO_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("MICRO_SKIP_BROWSER_TESTS=1: skipping the browser check");
        return;
    }
    let chromium = find_chromium()
        .expect("chromium is not installed: install it (Debian: apt-get install -y chromium; CI does) or set MICRO_SKIP_BROWSER_TESTS=1");
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&results(), dir.path()).unwrap();
    let url = format!("file://{}", files.index.display());
    let px = screenshot(&chromium, &url, dir.path());
    let ink = px.iter().filter(|p| p.iter().any(|c| *c < 200)).count();
    // Strongly blue pixels come only from the figures (heatmap cells, bars, curves), never from
    // the page's text and table backgrounds: they prove the SVGs loaded and were painted.
    let figure_blue = px.iter().filter(|p| p[2] as i32 - p[0] as i32 > 60).count();
    assert!(ink > 20_000, "only {ink} dark pixels in the screenshot");
    assert!(
        figure_blue > 2_000,
        "only {figure_blue} figure-coloured pixels: the SVG figures did not render"
    );
    for fig in ["heads.svg", "budget.svg"] {
        let px = screenshot(
            &chromium,
            &format!("file://{}", dir.path().join(fig).display()),
            dir.path(),
        );
        let drawn = px.iter().filter(|p| p.iter().any(|c| *c < 230)).count();
        assert!(
            drawn > 5_000,
            "{fig} renders almost empty ({drawn} drawn pixels)"
        );
    }
}

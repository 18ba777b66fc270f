//! The hand-derived Stage 1 gradients against central finite differences, in f64, through the
//! same generic code that trains in f32.

use micro_model::{Activation, Batch, Gate, Method, Objective, Params, Workspace, NO_USER};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Case {
    method: Method,
    k: usize,
    hidden: Option<usize>,
    activation: Activation,
    alpha: f64,
    /// Rows of a per-user table (0: none); pairs cycle through the users and no user.
    users: usize,
}

fn check(case: &Case) {
    let (n, dim, pdim) = (9, 5, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut params: Params<f64> = Params::init(
        case.method,
        case.k,
        dim,
        pdim,
        case.hidden,
        case.activation,
        &mut rng,
    )
    .with_users(case.users);
    for v in params.users.iter_mut() {
        *v = rng.random_range(-1.0..1.0);
    }
    let users: Vec<u32> = (0..n as u32)
        .map(|i| match case.users as u32 {
            0 => NO_USER,
            u if i % (u + 1) == u => NO_USER,
            u => i % (u + 1),
        })
        .collect();
    // Larger-than-init heads and static logits so every term of the loss is far from trivial.
    for v in params.heads.iter_mut() {
        *v *= 3.0;
    }
    if let Gate::Static(z) = &mut params.gate {
        z.iter_mut().for_each(|v| *v = rng.random_range(-1.0..1.0));
    }
    let diff: Vec<f64> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let prompt: Vec<f64> = (0..n * pdim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let obj = Objective {
        method: case.method,
        alpha: case.alpha,
    };
    let batch = Batch {
        diff: &diff,
        prompt: &prompt,
        users: &users,
        n,
    };
    let mut ws = Workspace::default();
    let mut grads = params.zeros_like();
    obj.loss_and_grad(&params, batch, Some(&mut grads), &mut ws, 1);
    let loss_at = |p: &Params<f64>| {
        obj.loss_and_grad(p, batch, None, &mut Workspace::default(), 1)
            .loss
    };
    let eps = 1e-6;
    let mut checked = 0;
    for t in 0..6 {
        for i in 0..params.tensors()[t].len() {
            let (mut plus, mut minus) = (params.clone(), params.clone());
            plus.tensors_mut()[t][i] += eps;
            minus.tensors_mut()[t][i] -= eps;
            let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * eps);
            let an = grads.tensors()[t][i];
            let rel = (an - fd).abs() / an.abs().max(fd.abs()).max(1e-6);
            assert!(rel < 1e-4, "{:?} K={} tensor {t}[{i}]: analytic {an}, finite difference {fd}, relative error {rel}", case.method, case.k);
            checked += 1;
        }
    }
    assert_eq!(checked, params.num_params());
}

#[test]
fn micro_mlp_router_gradients_match_finite_differences() {
    check(&Case {
        method: Method::Micro,
        k: 3,
        hidden: Some(6),
        activation: Activation::Tanh,
        alpha: 0.5,
        users: 0,
    });
    check(&Case {
        method: Method::Micro,
        k: 4,
        hidden: Some(7),
        activation: Activation::Relu,
        alpha: 0.5,
        users: 0,
    });
}

/// The per-user table's rows: d loss / d b_u sums d loss / d logits over user u's pairs, and
/// pairs without a user leave the table alone.
#[test]
fn user_table_gradients_match_finite_differences() {
    check(&Case {
        method: Method::Micro,
        k: 3,
        hidden: Some(5),
        activation: Activation::Tanh,
        alpha: 0.5,
        users: 2,
    });
    check(&Case {
        method: Method::Micro,
        k: 2,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.05,
        users: 4,
    });
}

#[test]
fn micro_linear_router_gradients_match_finite_differences() {
    check(&Case {
        method: Method::Micro,
        k: 3,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.5,
        users: 0,
    });
    check(&Case {
        method: Method::Micro,
        k: 2,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.0,
        users: 0,
    });
}

#[test]
fn baseline_gradients_match_finite_differences() {
    check(&Case {
        method: Method::Static,
        k: 3,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.5,
        users: 0,
    });
    check(&Case {
        method: Method::Single,
        k: 1,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.5,
        users: 0,
    });
    check(&Case {
        method: Method::SharedBase,
        k: 4,
        hidden: None,
        activation: Activation::Relu,
        alpha: 0.5,
        users: 0,
    });
}

/// The loss itself against a direct evaluation of the formula, written independently.
#[test]
fn micro_loss_value_matches_the_formula() {
    let (n, dim, pdim, k) = (6, 4, 3, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let params: Params<f64> = Params::init(
        Method::Micro,
        k,
        dim,
        pdim,
        Some(5),
        Activation::Relu,
        &mut rng,
    );
    let diff: Vec<f64> = (0..n * dim).map(|_| rng.random_range(-2.0..2.0)).collect();
    let prompt: Vec<f64> = (0..n * pdim).map(|_| rng.random_range(-2.0..2.0)).collect();
    let got = Objective {
        method: Method::Micro,
        alpha: 0.5,
    }
    .loss_and_grad(
        &params,
        Batch {
            diff: &diff,
            prompt: &prompt,
            users: &[],
            n,
        },
        None,
        &mut Workspace::default(),
        1,
    );
    let Gate::Router(r) = &params.gate else {
        unreachable!()
    };
    let mut want = 0.0;
    for i in 0..n {
        let z = r.logits(&prompt[i * pdim..(i + 1) * pdim]);
        let zsum: f64 = z.iter().map(|v| v.exp()).sum();
        let f: Vec<f64> = z.iter().map(|v| v.exp() / zsum).collect();
        let p: f64 = (0..k)
            .map(|j| {
                let d: f64 = (0..dim)
                    .map(|c| params.heads[j * dim + c] * diff[i * dim + c])
                    .sum();
                f[j] / (1.0 + (-d).exp())
            })
            .sum();
        want += -p.ln() + 0.5 * f.iter().map(|v| v * v.ln()).sum::<f64>();
    }
    want /= n as f64;
    assert!((got.loss - want).abs() < 1e-12, "{} vs {want}", got.loss);
}

//! Per-prompt candidate responses drawn from the corpus, and the pairs each criterion judges.

use std::collections::{BTreeMap, HashMap};

use rand::seq::IndexedRandom;
use rand::Rng;

use super::corpus::Exchange;
use super::raters::{domain_of, informal_markers, length_decisive, word_count, Criterion, Domain};

/// A distinct answer text with the features the raters read.
#[derive(Clone, Debug)]
pub struct Answer {
    pub text: String,
    /// Topic of the first file (in name order) that holds this text.
    pub topic: String,
    pub words: usize,
    pub markers: usize,
}

/// A distinct question (case and trailing punctuation ignored) with all its answers.
#[derive(Clone, Debug)]
pub struct Question {
    pub text: String,
    pub topic: String,
    pub answers: Vec<usize>,
}

/// Questions and answers of the corpus, deduplicated, indexed by topic.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    pub questions: Vec<Question>,
    pub answers: Vec<Answer>,
    by_topic: BTreeMap<String, Vec<usize>>,
    by_domain: HashMap<Domain, Vec<usize>>,
}

/// Questions differing only in case or a trailing `?`/`.`/`!` are one prompt, so the split by
/// prompt cannot put near-duplicates on both sides.
pub fn question_key(q: &str) -> String {
    q.trim()
        .trim_end_matches(['?', '.', '!', ' '])
        .to_lowercase()
}

impl Pool {
    pub fn new(exchanges: &[Exchange]) -> Pool {
        let mut pool = Pool::default();
        let mut answer_ix: HashMap<&str, usize> = HashMap::new();
        let mut question_ix: HashMap<String, usize> = HashMap::new();
        for ex in exchanges {
            let a = *answer_ix.entry(ex.answer.as_str()).or_insert_with(|| {
                pool.answers.push(Answer {
                    text: ex.answer.clone(),
                    topic: ex.topic.clone(),
                    words: word_count(&ex.answer),
                    markers: informal_markers(&ex.answer),
                });
                pool.answers.len() - 1
            });
            let q = *question_ix
                .entry(question_key(&ex.question))
                .or_insert_with(|| {
                    pool.questions.push(Question {
                        text: ex.question.clone(),
                        topic: ex.topic.clone(),
                        answers: Vec::new(),
                    });
                    pool.questions.len() - 1
                });
            if !pool.questions[q].answers.contains(&a) {
                pool.questions[q].answers.push(a);
            }
        }
        for (i, a) in pool.answers.iter().enumerate() {
            pool.by_topic.entry(a.topic.clone()).or_default().push(i);
            pool.by_domain
                .entry(domain_of(&a.topic))
                .or_default()
                .push(i);
        }
        pool
    }
}

/// A candidate response to one question, with the topic the raters attribute to it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub answer: usize,
    /// The question's topic for its own answers, else the answer's topic.
    pub topic: String,
    /// 2: an answer to this question; 1: same topic; 0: another topic.
    pub relevance: u8,
}

/// Draws up to `n` candidates for question `q`: one of its own answers, one other answer of its
/// topic, one answer of each domain (tech, culture) the question is not in, and random answers
/// of other topics for the rest.
pub fn draw_candidates(pool: &Pool, q: usize, n: usize, rng: &mut impl Rng) -> Vec<Candidate> {
    let question = &pool.questions[q];
    let own = &question.answers;
    let mut picked: Vec<usize> = Vec::with_capacity(n);
    if let Some(a) = own.choose(rng) {
        picked.push(*a);
    }
    let mut take = |from: &[usize], picked: &mut Vec<usize>, other_topic: bool| {
        let eligible: Vec<usize> = from
            .iter()
            .copied()
            .filter(|a| !own.contains(a) && !picked.contains(a))
            .filter(|a| !other_topic || pool.answers[*a].topic != question.topic)
            .collect();
        if let Some(a) = eligible.choose(rng) {
            picked.push(*a);
        }
    };
    take(
        pool.by_topic
            .get(&question.topic)
            .map_or(&[], Vec::as_slice),
        &mut picked,
        false,
    );
    let q_domain = domain_of(&question.topic);
    for d in [Domain::Tech, Domain::Culture] {
        if d != q_domain {
            take(
                pool.by_domain.get(&d).map_or(&[], Vec::as_slice),
                &mut picked,
                true,
            );
        }
    }
    let all: Vec<usize> = (0..pool.answers.len()).collect();
    while picked.len() < n {
        let before = picked.len();
        take(&all, &mut picked, true);
        if picked.len() == before {
            break;
        }
    }
    picked.truncate(n);
    picked
        .into_iter()
        .map(|a| {
            let mine = own.contains(&a);
            let topic = if mine {
                question.topic.clone()
            } else {
                pool.answers[a].topic.clone()
            };
            let relevance = if mine {
                2
            } else {
                u8::from(topic == question.topic)
            };
            Candidate {
                answer: a,
                topic,
                relevance,
            }
        })
        .collect()
}

/// A judged pair before it is given to users: `first` is what the non-reversed user of
/// `criterion` prefers (shorter, more formal, technical, relevant), `second` the other.
#[derive(Clone, Debug, PartialEq)]
pub struct BasePair {
    pub criterion: Criterion,
    pub question: usize,
    pub first: Candidate,
    pub second: Candidate,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.answer == other.answer
    }
}

/// Every pair of `cands` that some criterion is decisive on, oriented for that criterion.
pub fn judge_pairs(pool: &Pool, q: usize, cands: &[Candidate]) -> Vec<BasePair> {
    let mut out = Vec::new();
    for (i, a) in cands.iter().enumerate() {
        for b in &cands[i + 1..] {
            for criterion in [
                Criterion::Length,
                Criterion::Register,
                Criterion::Domain,
                Criterion::Relevance,
            ] {
                if let Some(a_first) = prefers_first(pool, criterion, a, b) {
                    let (first, second) = if a_first { (a, b) } else { (b, a) };
                    out.push(BasePair {
                        criterion,
                        question: q,
                        first: first.clone(),
                        second: second.clone(),
                    });
                }
            }
        }
    }
    out
}

/// `Some(true)` when the non-reversed user of `criterion` prefers `a`, `Some(false)` for `b`,
/// `None` when that criterion is indifferent (the pair is dropped for it).
pub fn prefers_first(
    pool: &Pool,
    criterion: Criterion,
    a: &Candidate,
    b: &Candidate,
) -> Option<bool> {
    let (xa, xb) = (&pool.answers[a.answer], &pool.answers[b.answer]);
    match criterion {
        Criterion::Length => (length_decisive(xa.words, xb.words) && xa.markers == xb.markers)
            .then_some(xa.words < xb.words),
        Criterion::Register => (xa.markers != xb.markers && !length_decisive(xa.words, xb.words))
            .then_some(xa.markers < xb.markers),
        Criterion::Domain => match (domain_of(&a.topic), domain_of(&b.topic)) {
            (Domain::Tech, Domain::Culture) => Some(true),
            (Domain::Culture, Domain::Tech) => Some(false),
            _ => None,
        },
        Criterion::Relevance => match (a.relevance, b.relevance) {
            (2, 0) => Some(true),
            (0, 2) => Some(false),
            _ => None,
        },
    }
}

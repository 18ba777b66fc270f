//! What a long recipe tells whoever runs it: steps, lines of results, and the progress of the
//! embedding and training inside them. The command line draws bars; tests stay silent.

use micro_embed::Tick;
use micro_model::TrainEvent;

/// Receives a recipe's progress. Every method has a silent default.
pub trait Observer: Send {
    /// A numbered step begins.
    fn step(&mut self, _number: usize, _what: &str) {}
    /// A line worth printing (a result, a choice the recipe made).
    fn line(&mut self, _text: &str) {}
    /// Embedding progress.
    fn embed(&mut self, _tick: Tick) {}
    /// Training progress of the model called `label`.
    fn train(&mut self, _label: &str, _event: &TrainEvent<'_>) {}
}

/// An observer that drops everything.
pub struct Silent;

impl Observer for Silent {}

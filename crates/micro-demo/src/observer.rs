//! What a long recipe tells whoever runs it: steps, lines of results, and the progress of the
//! embedding, training and search inside them. The library crates emit these events through
//! callbacks; `micro` has one observer for all its commands (bars on a terminal, lines in
//! logs); tests stay silent.

use micro_embed::Tick;
use micro_model::{SearchEvent, TrainEvent};

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
    /// Hyperparameter search progress of the model called `label`; by default only the
    /// trainings inside it, as [`Observer::train`].
    fn search(&mut self, label: &str, event: SearchEvent<'_>) {
        if let SearchEvent::Train(t) = event {
            self.train(label, t)
        }
    }
}

/// An observer that drops everything.
pub struct Silent;

impl Observer for Silent {}

//! A small bridge between pure decision functions and cqrs-es's `Aggregate::handle`.

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;

/// An aggregate whose command handling is a pure function from state and command to events.
pub trait Decide: Aggregate {
    /// Decides which events a command produces, without changing `self`.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Runs [`Decide::decide`] and writes the resulting events to the sink.
    fn decide_into(
        &mut self,
        command: Self::Command,
        sink: &EventSink<Self>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send
    where
        Self::Command: Send,
        Self::Error: Send,
    {
        async move {
            for event in self.decide(command)? {
                sink.write(event, self).await;
            }
            Ok(())
        }
    }
}

//! A `tracing` subscriber that keeps every span and event it sees, with
//! their fields as text, for tests to inspect. Installed per thread with
//! [`Capture::install`]: a current-thread runtime's tasks all run there.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Metadata, Subscriber};

/// A span as created, with the fields recorded on it since.
#[derive(Debug, Clone)]
pub struct SpanSeen {
    pub name: String,
    pub fields: BTreeMap<String, String>,
}

/// An event: its level, message, fields, and the span it belongs to (its
/// explicit parent, or the span entered when it was emitted).
#[derive(Debug, Clone)]
pub struct EventSeen {
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub span: Option<SpanSeen>,
}

impl EventSeen {
    /// The field `name` of the event, else of its span.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .or_else(|| self.span.as_ref()?.fields.get(name))
            .map(String::as_str)
    }
}

#[derive(Default)]
struct Seen {
    next_id: u64,
    spans: HashMap<u64, SpanSeen>,
    metadata: HashMap<u64, &'static Metadata<'static>>,
    /// The spans entered on this subscriber's thread, innermost last.
    entered: Vec<u64>,
    events: Vec<Emitted>,
}

/// An event as emitted: its span by id, looked up when asked for.
struct Emitted {
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
    span: Option<u64>,
}

/// The subscriber; clones share what was seen.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Seen>>);

impl Capture {
    /// Makes this the current thread's subscriber until the guard drops.
    pub fn install(&self) -> DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event so far, with its span as it is now (fields recorded
    /// after the event included).
    pub fn events(&self) -> Vec<EventSeen> {
        let seen = self.seen();
        seen.events
            .iter()
            .map(|event| EventSeen {
                level: event.level,
                message: event.message.clone(),
                fields: event.fields.clone(),
                span: event.span.and_then(|id| seen.spans.get(&id).cloned()),
            })
            .collect()
    }

    /// The events with `message`.
    pub fn events_named(&self, message: &str) -> Vec<EventSeen> {
        self.events()
            .into_iter()
            .filter(|event| event.message == message)
            .collect()
    }

    /// Every span so far.
    pub fn spans(&self) -> Vec<SpanSeen> {
        self.seen().spans.values().cloned().collect()
    }

    /// Everything seen as one text: span names and fields, event messages
    /// and fields. For checking that something never appears.
    pub fn all_text(&self) -> String {
        let mut text = String::new();
        for span in self.spans() {
            text.push_str(&format!("{} {:?}\n", span.name, span.fields));
        }
        for event in self.events() {
            text.push_str(&format!("{} {:?}\n", event.message, event.fields));
        }
        text
    }
}

/// Collects fields as text; the message goes apart.
struct Fields<'a> {
    fields: &'a mut BTreeMap<String, String>,
    message: Option<&'a mut String>,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, text: String) {
        match (&mut self.message, field.name()) {
            (Some(message), "message") => **message = text,
            _ => {
                self.fields.insert(field.name().to_owned(), text);
            }
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut seen = self.seen();
        seen.next_id += 1;
        let id = seen.next_id;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields {
            fields: &mut fields,
            message: None,
        });
        let name = attrs.metadata().name().to_owned();
        seen.spans.insert(id, SpanSeen { name, fields });
        seen.metadata.insert(id, attrs.metadata());
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen();
        if let Some(span) = seen.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields {
                fields: &mut span.fields,
                message: None,
            });
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut seen = self.seen();
        let span = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => seen.entered.last().copied(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        let mut message = String::new();
        event.record(&mut Fields {
            fields: &mut fields,
            message: Some(&mut message),
        });
        let level = *event.metadata().level();
        seen.events.push(Emitted {
            level,
            message,
            fields,
            span,
        });
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let seen = self.seen();
        let current = seen
            .entered
            .last()
            .and_then(|id| Some((*id, *seen.metadata.get(id)?)));
        match current {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }

    fn enter(&self, span: &Id) {
        self.seen().entered.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut seen = self.seen();
        if let Some(at) = seen.entered.iter().rposition(|id| *id == span.into_u64()) {
            seen.entered.remove(at);
        }
    }
}

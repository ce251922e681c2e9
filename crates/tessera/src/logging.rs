//! Log lines as text or JSON (`--log-format`), each logged while a request is served carrying
//! its id (`tessera_http::observe::request_id`): `request_id=…` at the end of a text line, a
//! `request_id` member of a JSON object. The access lines name it themselves.

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a formatter: adds the request id to lines logged within a request.
pub struct WithRequestId<F> {
    pub inner: F,
    pub json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let id = match tessera_http::observe::request_id() {
            // The access lines carry it as a field already.
            Some(id) if event.metadata().target() != "tessera::access" => id,
            _ => return self.inner.format_event(ctx, writer, event),
        };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        // The id is 1 to 64 of `A-Za-z0-9._:-` (observe's rule): nothing to escape.
        match (self.json, line.strip_prefix('{')) {
            (true, Some(rest)) => write!(writer, "{{\"request_id\":\"{id}\",{rest}"),
            _ => {
                let body = line.strip_suffix('\n').unwrap_or(&line);
                writeln!(writer, "{body} request_id={id}")
            }
        }
    }
}

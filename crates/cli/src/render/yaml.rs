//! A block-style YAML writer for `Serialize` values, in the layout `kubectl get -o yaml` uses.
//!
//! Why our own: the state document of a limits-scale cluster is tens of megabytes, and it must
//! be written in a fraction of a second; the layout must also stay byte-stable across
//! dependency upgrades, because it is what the snapshots compare. Sequences inside mappings
//! are not indented (Go's yaml.v2 style, what kubectl prints), strings are written plain
//! unless YAML would read them as something else, and then double-quoted.

use std::fmt::{self, Display, Write as _};

use knetsim_control::state::{PLAIN, SHARED};
use serde::ser::{self, Serialize};

mod items;
pub(crate) use items::RootItem;

/// Serializes `value` as a YAML document (no leading `---`), ending in a newline.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    to_string_sized(value, 1 << 16)
}

/// [`to_string`] into a buffer of `capacity` bytes to start with.
fn to_string_sized<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Result<String, Error> {
    let mut ser = Ser {
        out: String::with_capacity(capacity),
        scratch: String::new(),
        sink: None,
        shared: Default::default(),
        verbatim: false,
    };
    value.serialize(Emit {
        s: &mut ser,
        ctx: Ctx::Root,
    })?;
    Ok(ser.out)
}

/// Serializes `value` to `w`, handing it the text in chunks of about a megabyte, so that a
/// document of hundreds of megabytes never sits in memory whole.
pub fn to_writer<T: Serialize + ?Sized>(
    w: &mut dyn std::io::Write,
    value: &T,
) -> Result<(), Error> {
    let mut ser = Ser {
        out: String::with_capacity(FLUSH_AT + (1 << 16)),
        scratch: String::new(),
        sink: Some(w),
        shared: Default::default(),
        verbatim: false,
    };
    value.serialize(Emit {
        s: &mut ser,
        ctx: Ctx::Root,
    })?;
    ser.flush()
}

/// Output is handed to the sink once it holds this much.
const FLUSH_AT: usize = 1 << 20;

/// Writes one entry of a root-level mapping: `key: value`, as [`to_writer`] would write it
/// inside a document. Lets a caller write a large document's top level itself.
pub fn write_root_entry<T: Serialize + ?Sized>(
    w: &mut dyn std::io::Write,
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let mut ser = Ser {
        out: String::with_capacity(1 << 12),
        scratch: String::new(),
        sink: Some(w),
        shared: Default::default(),
        verbatim: false,
    };
    let mut map = MapEmit {
        s: &mut ser,
        ctx: Ctx::Root,
        count: 0,
    };
    ser::SerializeMap::serialize_entry(&mut map, key, value)?;
    ser.flush()
}

/// Writes `key:` and a sequence of `items` below it, rendering the items in parallel batches
/// (rayon, see [`super::par`]) and writing them in order, so the text is exactly what the
/// sequential writer makes whatever the thread count, and at most one batch is held in memory.
pub(crate) fn write_root_seq_par<T: RootItem>(
    w: &mut dyn std::io::Write,
    key: &str,
    items: &[&T],
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error(e.to_string());
    let mut head = String::new();
    if needs_quotes(key) {
        quote_into(&mut head, key);
    } else {
        head.push_str(key);
    }
    if items.is_empty() {
        head.push_str(": []\n");
        return w.write_all(head.as_bytes()).map_err(io);
    }
    head.push_str(":\n");
    w.write_all(head.as_bytes()).map_err(io)?;
    super::par::write_batches::<T, Slot>(w, items)
}

/// A buffer the items of one chunk are rendered into, with the chunk's cache of shared
/// values ([`SHARED`]); both are cleared, not freed, between chunks.
#[derive(Default)]
struct Slot {
    out: String,
    shared: knetsim_control::fxhash::FxHashMap<(usize, Ctx), String>,
}

impl<T: RootItem> super::par::Chunk<T> for Slot {
    type Error = Error;

    /// Renders `items` as a root-level sequence's items, into a buffer of at least `capacity`.
    fn render(&mut self, _first: usize, items: &[&T], capacity: usize) -> Result<(), Error> {
        self.out.clear();
        self.out.reserve(capacity);
        self.shared.clear();
        let mut ser = Ser {
            out: std::mem::take(&mut self.out),
            scratch: String::new(),
            sink: None,
            shared: std::mem::take(&mut self.shared),
            verbatim: false,
        };
        // What the serde path writes for a root-level sequence's items (`- ` at indent 0).
        let result = items.iter().try_for_each(|item| item.render_item(&mut ser));
        self.out = ser.out;
        self.shared = ser.shared;
        result
    }

    fn text(&self) -> &[u8] {
        self.out.as_bytes()
    }

    fn io(e: std::io::Error) -> Error {
        Error(e.to_string())
    }
}

#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The output and a scratch buffer for `Display` values (addresses), reused so that writing
/// a large document allocates little beyond the output itself.
pub(crate) struct Ser<'w> {
    out: String,
    scratch: String,
    sink: Option<&'w mut dyn std::io::Write>,
    /// The text of shared values (see [`SHARED`]) already rendered, by address and place.
    shared: knetsim_control::fxhash::FxHashMap<(usize, Ctx), String>,
    /// The next string is known to need no quotes (see [`PLAIN`]).
    verbatim: bool,
}

impl Ser<'_> {
    fn flush(&mut self) -> Result<(), Error> {
        if let Some(w) = self.sink.as_mut() {
            w.write_all(self.out.as_bytes())
                .map_err(|e| Error(e.to_string()))?;
            self.out.clear();
        }
        Ok(())
    }

    /// Called between sequence items, where a document is naturally cut.
    fn maybe_flush(&mut self) -> Result<(), Error> {
        if self.out.len() >= FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn pad(&mut self, n: usize) {
        const SPACES: &str = "                ";
        // A copy of a fixed 16 bytes and a cut, not a copy of `n`: the compiler turns a
        // variable-length copy of spaces into a call to `memset`, which cost more than the
        // rest of the line it pads (there are ten million lines in a limits-scale document).
        if n <= SPACES.len() {
            self.out.push_str(SPACES);
            self.out.truncate(self.out.len() - (SPACES.len() - n));
            return;
        }
        let mut n = n;
        while n > SPACES.len() {
            self.out.push_str(SPACES);
            n -= SPACES.len();
        }
        self.pad(n);
    }

    fn push_str_scalar(&mut self, s: &str) {
        if needs_quotes(s) {
            quote_into(&mut self.out, s);
        } else {
            self.out.push_str(s);
        }
    }
}

/// Where a value is being written. The writer is streaming: a mapping or sequence decides on
/// its first entry whether it is block-style (on the following lines) or, if it ends without
/// entries, an inline `{}` / `[]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Ctx {
    /// The document itself.
    Root,
    /// After `key:` (no space yet) of a mapping whose entries sit at `indent`.
    MapValue { indent: usize },
    /// After `- ` of a sequence item at `indent`.
    SeqItem { indent: usize },
}

impl Ctx {
    /// Indentation of the entries of a mapping written here.
    fn map_indent(self) -> usize {
        match self {
            Ctx::Root => 0,
            Ctx::MapValue { indent } => indent + 2,
            Ctx::SeqItem { indent } => indent + 2,
        }
    }

    /// Indentation of the `- ` of a sequence written here. Inside a mapping the items line up
    /// with the key, as kubectl (Go yaml.v2) writes them.
    fn seq_indent(self) -> usize {
        match self {
            Ctx::Root => 0,
            Ctx::MapValue { indent } => indent,
            Ctx::SeqItem { indent } => indent + 2,
        }
    }
}

struct Emit<'a, 'w> {
    s: &'a mut Ser<'w>,
    ctx: Ctx,
}

impl Emit<'_, '_> {
    fn scalar_prefix(&mut self) {
        if let Ctx::MapValue { .. } = self.ctx {
            self.s.out.push(' ');
        }
    }

    fn plain(self, text: &str) -> Result<(), Error> {
        let mut me = self;
        me.scalar_prefix();
        me.s.out.push_str(text);
        me.s.out.push('\n');
        Ok(())
    }

    fn string(self, text: &str) -> Result<(), Error> {
        let mut me = self;
        me.scalar_prefix();
        if std::mem::take(&mut me.s.verbatim) {
            me.s.out.push_str(text);
        } else {
            me.s.push_str_scalar(text);
        }
        me.s.out.push('\n');
        Ok(())
    }
}

/// Writes `s` double-quoted, with YAML escapes.
fn quote_into(q: &mut String, s: &str) {
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(q, "\\x{:02x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
}

/// Renders a string scalar: plain when YAML 1.1 and 1.2 readers would both read it back as
/// the same string, double-quoted otherwise.
#[cfg(test)]
fn render_str(s: &str) -> String {
    let mut out = String::new();
    if needs_quotes(s) {
        quote_into(&mut out, s);
    } else {
        out.push_str(s);
    }
    out
}

fn needs_quotes(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return true;
    };
    // "-" alone or "- x" is a sequence; "-1" is a number; "-foo" is fine but rare: quote every
    // leading indicator rather than reason about each.
    if BYTE_CLASS[first as usize] & INDICATOR != 0 {
        return true;
    }
    let last = bytes[bytes.len() - 1];
    if last == b' ' || last == b':' {
        return true;
    }
    // One pass over a class table, without branches, folds what the string holds: every
    // scalar of a 180 MB state document goes through here. Spaces (rare) get a second look.
    let (mut all, mut any) = (u8::MAX, 0u8);
    for &b in bytes {
        let c = BYTE_CLASS[b as usize];
        all &= c;
        any |= c;
    }
    if any & CONTROL != 0 {
        return true;
    }
    // ": " starts a mapping value and " #" a comment.
    if any & SPACE != 0 && (s.contains(": ") || s.contains(" #")) {
        return true;
    }
    let maybe_number = all & NUMERIC != 0;
    if bytes.len() <= 5 && is_reserved_word(s) {
        return true;
    }
    // Two dots and no colon (an IPv4 address) is never a number: floats have one dot, and
    // only base-60 forms have colons. Saves the full check for a million addresses.
    maybe_number
        && {
            let (dots, colons) = bytes.iter().fold((0usize, 0usize), |(d, c), &b| {
                (d + usize::from(b == b'.'), c + usize::from(b == b':'))
            });
            !(dots >= 2 && colons == 0)
        }
        && looks_numeric(s)
}

/// [`BYTE_CLASS`] bits: may appear in a number (digits, signs, `.`, `_`, `:`, exponent and
/// radix letters, hex digits), a control character, a space.
const NUMERIC: u8 = 1;
const CONTROL: u8 = 2;
const SPACE: u8 = 4;
/// Characters a plain scalar must not start with: YAML's indicators, quotes and space.
const INDICATOR: u8 = 8;

static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let numeric = matches!(
            c,
            b'0'..=b'9'
                | b'.'
                | b'_'
                | b'+'
                | b'-'
                | b':'
                | b'e'
                | b'E'
                | b'x'
                | b'o'
                | b'b'
                | b'a'..=b'd'
                | b'f'
                | b'A'..=b'D'
                | b'F'
        );
        t[b] = if numeric { NUMERIC } else { 0 }
            | if c < 0x20 || c == 0x7f { CONTROL } else { 0 }
            | if c == b' ' { SPACE } else { 0 }
            | if matches!(
                c,
                b'-' | b'?'
                    | b':'
                    | b','
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'#'
                    | b'&'
                    | b'*'
                    | b'!'
                    | b'|'
                    | b'>'
                    | b'\''
                    | b'"'
                    | b'%'
                    | b'@'
                    | b'`'
                    | b' '
            ) {
                INDICATOR
            } else {
                0
            };
        b += 1;
    }
    t
};

/// Words YAML 1.1 or 1.2 readers take for booleans, null or special floats.
fn is_reserved_word(s: &str) -> bool {
    // Most short strings (`v1`, `Pod`, `TCP`) start with none of the words' first letters:
    // they are settled without thirteen comparisons.
    if !matches!(
        s.as_bytes().first().map(u8::to_ascii_lowercase),
        Some(b't' | b'f' | b'y' | b'n' | b'o' | b'~' | b'.' | b'-')
    ) {
        return false;
    }
    [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", ".nan",
    ]
    .iter()
    .any(|w| s.eq_ignore_ascii_case(w))
}

/// True for anything a YAML 1.1 or 1.2 reader would take for a number: integers (with `_`
/// separators, or 0x/0o/0b prefixes), floats with one decimal point and an optional
/// exponent, and YAML 1.1's base-60 forms (`1:20`). Dotted quads and IPv6 addresses are not.
fn looks_numeric(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    if let Some(rest) = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0o"))
        .or_else(|| t.strip_prefix("0b"))
    {
        return !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit() || c == '_');
    // Base 60: digit groups joined by ':' (each group non-empty), an optional fraction.
    if t.contains(':') {
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        return whole.split(':').all(digits) && (frac.is_empty() || digits(frac));
    }
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !e.chars().all(|c| c.is_ascii_digit()) || e.is_empty() {
            return false;
        }
    }
    match mantissa.split_once('.') {
        None => digits(mantissa),
        Some((a, b)) => {
            (digits(a) || a.is_empty())
                && (b.is_empty() || b.chars().all(|c| c.is_ascii_digit() || c == '_'))
                && !b.contains('.')
                && (!a.is_empty() || !b.is_empty())
        }
    }
}

macro_rules! scalar_int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            let mut me = self;
            me.scalar_prefix();
            push_int(&mut me.s.out, v.unsigned_abs() as u128, v < (0 as $t));
            me.s.out.push('\n');
            Ok(())
        }
    )*};
}

macro_rules! scalar_uint {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            let mut me = self;
            me.scalar_prefix();
            push_int(&mut me.s.out, v as u128, false);
            me.s.out.push('\n');
            Ok(())
        }
    )*};
}

/// Decimal text of an integer, as `Display` writes it, without `core::fmt` (ports and
/// counts: a limits-scale document has a million of them).
pub(super) fn push_int(out: &mut String, v: u128, negative: bool) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    // 64-bit division where the value fits: 128-bit division is a library call.
    match u64::try_from(v) {
        Ok(mut v) => loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        },
        Err(_) => {
            let mut v = v;
            loop {
                i -= 1;
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
        }
    }
    if negative {
        out.push('-');
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

impl<'a, 'w> ser::Serializer for Emit<'a, 'w> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqEmit<'a, 'w>;
    type SerializeTuple = SeqEmit<'a, 'w>;
    type SerializeTupleStruct = SeqEmit<'a, 'w>;
    type SerializeTupleVariant = SeqEmit<'a, 'w>;
    type SerializeMap = MapEmit<'a, 'w>;
    type SerializeStruct = MapEmit<'a, 'w>;
    type SerializeStructVariant = MapEmit<'a, 'w>;

    scalar_int!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128
    );
    scalar_uint!(
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128
    );

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.plain(if v { "true" } else { "false" })
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v as f64)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        let text = if v.is_nan() {
            ".nan".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            }
        } else {
            let s = v.to_string();
            if s.contains(['.', 'e']) {
                s
            } else {
                format!("{s}.0")
            }
        };
        self.plain(&text)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.plain("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.plain("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.plain("null")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        if name == PLAIN {
            self.s.verbatim = true;
            return v.serialize(self);
        }
        if name != SHARED {
            return v.serialize(self);
        }
        shared(self.s, self.ctx, v)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        use ser::SerializeMap;
        let mut m = self.serialize_map(Some(1))?;
        m.serialize_entry(variant, v)?;
        m.end()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqEmit<'a, 'w>, Error> {
        Ok(SeqEmit {
            s: self.s,
            ctx: self.ctx,
            count: 0,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqEmit<'a, 'w>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqEmit<'a, 'w>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SeqEmit<'a, 'w>, Error> {
        // `{variant: [items]}`: open the one-entry mapping, then the sequence as its value.
        let indent = open_entry(self.s, self.ctx, 0, variant);
        Ok(SeqEmit {
            s: self.s,
            ctx: Ctx::MapValue { indent },
            count: 0,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapEmit<'a, 'w>, Error> {
        Ok(MapEmit {
            s: self.s,
            ctx: self.ctx,
            count: 0,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapEmit<'a, 'w>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapEmit<'a, 'w>, Error> {
        let indent = open_entry(self.s, self.ctx, 0, variant);
        Ok(MapEmit {
            s: self.s,
            ctx: Ctx::MapValue { indent },
            count: 0,
        })
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        let Emit { s, ctx } = self;
        let mut scratch = std::mem::take(&mut s.scratch);
        scratch.clear();
        let _ = write!(scratch, "{v}");
        if let Ctx::MapValue { .. } = ctx {
            s.out.push(' ');
        }
        s.push_str_scalar(&scratch);
        s.out.push('\n');
        s.scratch = scratch;
        Ok(())
    }
}

/// Writes the start of the `count`-th entry of a mapping written in `ctx`, up to and
/// including `key:`, and returns the indentation of the mapping's entries.
fn open_entry(s: &mut Ser<'_>, ctx: Ctx, count: usize, key: &str) -> usize {
    let indent = ctx.map_indent();
    if count == 0 {
        if let Ctx::MapValue { .. } = ctx {
            s.out.push('\n');
            s.pad(indent);
        }
    } else {
        s.pad(indent);
    }
    s.push_str_scalar(key);
    s.out.push(':');
    indent
}

/// Writes a value many objects share (see [`SHARED`]: the labels, containers and owner
/// references of the pods of one template). It renders the same wherever it sits at the same
/// place, so it is rendered once per buffer and its text copied. Only while rendering to a
/// buffer: a streaming writer may hand part of the text to its sink mid-value.
fn shared<T: Serialize + ?Sized>(s: &mut Ser<'_>, ctx: Ctx, v: &T) -> Result<(), Error> {
    if s.sink.is_some() {
        return v.serialize(Emit { s, ctx });
    }
    let key = (std::ptr::from_ref(v).cast::<()>() as usize, ctx);
    if let Some(text) = s.shared.get(&key) {
        s.out.push_str(text);
        return Ok(());
    }
    let start = s.out.len();
    v.serialize(Emit { s: &mut *s, ctx })?;
    let text = s.out[start..].to_owned();
    s.shared.insert(key, text);
    Ok(())
}

pub struct SeqEmit<'a, 'w> {
    s: &'a mut Ser<'w>,
    ctx: Ctx,
    count: usize,
}

impl SeqEmit<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.s.maybe_flush()?;
        let indent = self.ctx.seq_indent();
        if self.count == 0 {
            if let Ctx::MapValue { .. } = self.ctx {
                self.s.out.push('\n');
                self.s.pad(indent);
            }
        } else {
            self.s.pad(indent);
        }
        self.count += 1;
        self.s.out.push_str("- ");
        v.serialize(Emit {
            s: self.s,
            ctx: Ctx::SeqItem { indent },
        })
    }

    fn finish(self) -> Result<(), Error> {
        if self.count == 0 {
            if let Ctx::MapValue { .. } = self.ctx {
                self.s.out.push(' ');
            }
            self.s.out.push_str("[]\n");
        }
        Ok(())
    }
}

impl ser::SerializeSeq for SeqEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

pub struct MapEmit<'a, 'w> {
    s: &'a mut Ser<'w>,
    ctx: Ctx,
    count: usize,
}

impl MapEmit<'_, '_> {
    /// A struct field: its name is a Rust identifier (camelCased), which YAML always reads
    /// as a plain string, so it skips the quoting check.
    fn entry<V: Serialize + ?Sized>(&mut self, key: &'static str, v: &V) -> Result<(), Error> {
        debug_assert!(!needs_quotes(key), "{key}");
        self.rendered_entry(key, v)
    }

    /// Writes `key: value`, the key already rendered as YAML text.
    fn rendered_entry<V: Serialize + ?Sized>(&mut self, key: &str, v: &V) -> Result<(), Error> {
        let indent = self.ctx.map_indent();
        if self.count == 0 {
            if let Ctx::MapValue { .. } = self.ctx {
                self.s.out.push('\n');
                self.s.pad(indent);
            }
        } else {
            self.s.pad(indent);
        }
        self.s.out.push_str(key);
        self.s.out.push(':');
        self.count += 1;
        v.serialize(Emit {
            s: self.s,
            ctx: Ctx::MapValue { indent },
        })
    }

    fn finish(self) -> Result<(), Error> {
        if self.count == 0 {
            if let Ctx::MapValue { .. } = self.ctx {
                self.s.out.push(' ');
            }
            self.s.out.push_str("{}\n");
        }
        Ok(())
    }
}

/// Map keys must be scalars: they are rendered to text first.
fn key_text<K: Serialize + ?Sized>(k: &K) -> Result<String, Error> {
    let mut tmp = Ser {
        out: String::new(),
        scratch: String::new(),
        sink: None,
        shared: Default::default(),
        verbatim: false,
    };
    k.serialize(Emit {
        s: &mut tmp,
        ctx: Ctx::Root,
    })?;
    let text = tmp.out.trim_end_matches('\n');
    if text.contains('\n') {
        return Err(Error("map keys must be scalars".into()));
    }
    Ok(text.to_owned())
}

impl ser::SerializeMap for MapEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _k: &T) -> Result<(), Error> {
        Err(Error("keys and values must be serialized together".into()))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, _v: &T) -> Result<(), Error> {
        Err(Error("keys and values must be serialized together".into()))
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        k: &K,
        v: &V,
    ) -> Result<(), Error> {
        // The key is rendered (and quoted if needed) first, then written verbatim.
        let key = key_text(k)?;
        self.rendered_entry(&key, v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.entry(k, v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapEmit<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.entry(k, v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        cluster_ips: Vec<String>,
        ip_family_policy: &'static str,
        ports: Vec<BTreeMap<&'static str, u32>>,
        empty: Vec<u8>,
        none: Option<u8>,
        nested: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
    }

    #[test]
    fn kubectl_layout() {
        let spec = Spec {
            cluster_ips: vec!["10.96.0.10".into(), "fd00::a".into(), "::1".into()],
            ip_family_policy: "PreferDualStack",
            ports: vec![BTreeMap::from([("port", 80), ("targetPort", 9376)])],
            empty: vec![],
            none: None,
            nested: BTreeMap::from([("a", BTreeMap::from([("b", "c")]))]),
        };
        let got = to_string(&spec).unwrap();
        assert_eq!(
            got,
            "clusterIps:\n- 10.96.0.10\n- fd00::a\n- \"::1\"\nipFamilyPolicy: PreferDualStack\nports:\n- port: 80\n  targetPort: 9376\nempty: []\nnone: null\nnested:\n  a:\n    b: c\n"
        );
    }

    #[test]
    fn integers_and_booleans_as_display_writes_them() {
        #[derive(serde::Serialize)]
        struct Scalars {
            a: i8,
            b: i64,
            c: u16,
            d: u64,
            e: i128,
            f: u128,
            g: bool,
        }
        for (a, b, c, d, e, f, g) in [
            (0, 0, 0, 0, 0, 0, false),
            (
                i8::MIN,
                i64::MIN,
                u16::MAX,
                u64::MAX,
                i128::MIN,
                u128::MAX,
                true,
            ),
            (-1, -10, 10, 9, i128::MAX, u128::from(u64::MAX) + 1, true),
        ] {
            let got = to_string(&Scalars {
                a,
                b,
                c,
                d,
                e,
                f,
                g,
            })
            .unwrap();
            assert_eq!(
                got,
                format!("a: {a}\nb: {b}\nc: {c}\nd: {d}\ne: {e}\nf: {f}\ng: {g}\n")
            );
        }
    }

    /// Addresses skip the quoting check when their serializer knows they need none
    /// (`state::PLAIN`): they must come out exactly as the check would have them.
    #[test]
    fn addresses_quoted_as_the_check_would() {
        use knetsim_control::state::{IpList, PodStatus};
        use std::net::IpAddr;
        let mut ips: Vec<IpAddr> = [
            "10.96.0.10",
            "0.0.0.0",
            "::",
            "::1",
            "fd00::",
            "fd00::a",
            "1:2:3:4:5:6:7:8",
            "1::",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "fe80::1:2",
            "1:2:3:4:5:6:7:a",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // Addresses with few distinct digits, where the corner cases live.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut seg = [0u16; 8];
            for (i, s) in seg.iter_mut().enumerate() {
                *s = match (x >> (i * 3)) & 7 {
                    0..=2 => 0,
                    3 => 1,
                    4 => 0xa,
                    5 => 0x10,
                    _ => (x >> 40) as u16,
                };
            }
            ips.push(IpAddr::from(seg));
            ips.push(IpAddr::from((x as u32).to_be_bytes()));
        }
        for ip in ips {
            let status = PodStatus {
                pod_ips: IpList::one(ip),
                ..PodStatus::default()
            };
            let got = to_string(&status).unwrap();
            let want = format!(
                "phase: \"\"\npodIPs:\n- ip: {}\n",
                render_str(&ip.to_string())
            );
            assert_eq!(got, want, "{ip}");
        }
    }

    #[test]
    fn quoting_table() {
        for (s, quoted) in [
            ("plain", false),
            ("10.96.0.0/12", false),
            ("fd00::/108", false),
            ("fd00::", true),
            ("1.33", true),
            ("110", true),
            ("true", true),
            ("No", true),
            ("", true),
            ("a: b", true),
            ("- x", true),
            ("0x4000", true),
            ("1e3", true),
            ("1:20", true),
            ("10.96.0.10", false),
            ("2001:db8::1", false),
            ("1.0.0", false),
            (".5", true),
            ("IPv6 is not configured on this cluster", false),
            ("line\nbreak", true),
            ("Service \"x\" is invalid", false),
            ("v1", false),
            ("Pod", false),
            ("TCP", false),
            ("TRUE", true),
            ("False", true),
            ("y", true),
            ("N", true),
            ("yes", true),
            ("On", true),
            ("OFF", true),
            ("null", true),
            ("Null", true),
            ("~", true),
            (".inf", true),
            (".Inf", true),
            ("-.inf", true),
            (".NaN", true),
            ("nope", false),
            ("toe", false),
        ] {
            assert_eq!(needs_quotes(s), quoted, "{s:?}");
        }
        assert_eq!(render_str("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn nested_sequences_and_empty_root() {
        assert_eq!(
            to_string(&vec![vec![1, 2], vec![]]).unwrap(),
            "- - 1\n  - 2\n- []\n"
        );
        assert_eq!(to_string(&Vec::<u8>::new()).unwrap(), "[]\n");
        assert_eq!(to_string(&BTreeMap::<u8, u8>::new()).unwrap(), "{}\n");
    }
}

//! Rendering a large sequence in parallel batches and writing it in order: the machinery the
//! YAML and JSON writers share for the state document's four big lists.
//!
//! The items are cut into chunks of about [`TARGET`] bytes of text, four chunks a batch, one
//! rayon task a chunk. Each batch is rendered while the one before it is written: the write (a
//! copy into the page cache, or a pipe) then costs no wall time. Two sets of buffers take
//! turns, so after the first batches no buffer grows (each growth is a copy) and no fresh
//! memory is faulted in. Chunks are joined in input order, so the text does not depend on the
//! thread count.

use rayon::prelude::*;

/// Text per chunk, in bytes: small enough that the buffers stay in cache and cost no fresh
/// memory, large enough that a task is worth its scheduling. An EndpointSlice of a large
/// cluster is ten times the text of a pod, so the item count per chunk follows the size of
/// the items rendered so far.
const TARGET: usize = 1 << 17;
/// Chunks per batch.
const CHUNKS: usize = 4;

/// A buffer one chunk of items is rendered into, cleared (not freed) between chunks.
pub(crate) trait Chunk<T: ?Sized>: Default + Send {
    type Error: Send;
    /// Renders `items` into the buffer, replacing what it held; `first` is the index of
    /// `items[0]` in the whole sequence (a separator may depend on it), `capacity` a guess of
    /// the text's size.
    fn render(&mut self, first: usize, items: &[&T], capacity: usize) -> Result<(), Self::Error>;
    /// The text rendered last.
    fn text(&self) -> &[u8];
    fn io(e: std::io::Error) -> Self::Error;
}

/// Renders `items` chunk by chunk in parallel batches and writes the text to `w` in order.
pub(crate) fn write_batches<T: Sync + ?Sized, C: Chunk<T>>(
    w: &mut dyn std::io::Write,
    items: &[&T],
) -> Result<(), C::Error> {
    let mut rendering: Vec<C> = std::iter::repeat_with(C::default).take(CHUNKS).collect();
    let mut writing: Vec<C> = std::iter::repeat_with(C::default).take(CHUNKS).collect();
    // Bytes per item, a guess until the first batch is rendered (a large one: the first
    // chunks are then small).
    let mut per_item = 4096usize;
    // How many of `writing`'s buffers hold the previous batch.
    let mut pending = 0;
    let mut done = 0;
    while done < items.len() {
        let rest = &items[done..];
        let chunk = (TARGET / per_item).clamp(8, 4096);
        let batch = &rest[..rest.len().min(CHUNKS * chunk)];
        let render = |slots: &mut [C]| -> Result<(), C::Error> {
            batch
                .par_chunks(chunk)
                .zip(slots.par_iter_mut())
                .enumerate()
                .try_for_each(|(i, (c, slot))| {
                    slot.render(done + i * chunk, c, c.len() * per_item + per_item)
                })
        };
        let (rendered, written) = if pending > 0 {
            // The sink stays on this thread (stdout's lock cannot move); the rendering goes
            // to the pool.
            let mut rendered = None;
            let written = rayon::in_place_scope(|sc| {
                sc.spawn(|_| rendered = Some(render(&mut rendering)));
                write_slots(w, &writing[..pending])
            });
            (rendered.expect("the scope ran the rendering"), written)
        } else {
            (render(&mut rendering), Ok(()))
        };
        written.map_err(C::io)?;
        rendered?;
        pending = batch.len().div_ceil(chunk);
        let bytes: usize = rendering[..pending].iter().map(|s| s.text().len()).sum();
        per_item = (bytes / batch.len() + bytes / batch.len() / 8).max(16);
        std::mem::swap(&mut rendering, &mut writing);
        done += batch.len();
    }
    write_slots(w, &writing[..pending]).map_err(C::io)
}

fn write_slots<T: ?Sized, C: Chunk<T>>(
    w: &mut dyn std::io::Write,
    slots: &[C],
) -> std::io::Result<()> {
    slots.iter().try_for_each(|s| w.write_all(s.text()))
}

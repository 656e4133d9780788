//! `knetsim reach`: a reachability matrix of a scenario's dataplane.

use std::io::Write;
use std::path::Path;

use knetsim_dataplane::ReachQuery;

use crate::cli::TableOrJson;
use crate::{EXIT_INVALID, EXIT_OK};

pub fn reach(
    file: &Path,
    q: ReachQuery,
    output: TableOrJson,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (_, dp) = match super::dataplane::build(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    match knetsim_dataplane::reach(&dp, &q) {
        Ok(m) => {
            match output {
                TableOrJson::Table => {
                    out.write_all(knetsim_dataplane::render_reach_table(&m).as_bytes())?
                }
                TableOrJson::Json => {
                    serde_json::to_writer_pretty(&mut *out, &m)?;
                    out.write_all(b"\n")?;
                }
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(EXIT_INVALID)
        }
    }
}

//! `dfstream`: run streaming SQL scripts from the command line.
//!
//! ```text
//!  dfstream run FILE.sql | -e SQL
//!     │
//!     ├─ StreamContext (wall clock) + connectors (sources 'demo', 'file', 'kinesis';
//!     │  sinks 'object_store' / 'filesystem', 'kinesis'; tables 'object_store')
//!     ├─ CREATE STREAM ticker ... ('connector' = 'demo')      unless --no-demo
//!     ├─ run_script(sql): DDL takes effect (CREATE STREAM / SINK / TABLE), each query starts
//!     │     ──► StreamQuery 1..N   (INSERT INTO <sink>: a query whose output is sink reports)
//!     │
//!     └─ loop (one task): select over
//!          next batch of a query   ──► print (table / json / csv) ── --max-rows reached? stop
//!          next report of a sink   ──► "wrote <object> (n rows, b bytes)" on stderr (no stdout)
//!          every second            ──► status line on stderr (rows in/out, events/s, watermark,
//!                                      late, sink rows received / written, objects)
//!          Ctrl-C, --duration      ──► stop: sinks close (objects completed), their streams
//!                                      end, then exit 0; a second Ctrl-C aborts (exit 1)
//!          all queries ended       ──► exit 0;   an error ──► message on stderr, exit 1
//! ```

#![warn(missing_docs)]

pub mod args;
pub mod kda;
pub mod output;
pub mod status;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use datafusion::common::{exec_datafusion_err, DataFusionError, Result};
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion_stream::{StreamContext, StreamQuery};
use datafusion_stream_connectors::{register_all, DemoTickerConfig};
use futures::StreamExt;

use crate::args::{Cli, Command, RunArgs};
use crate::output::{is_broken_pipe, Output};
use crate::status::Status;

/// Resolves on the next Ctrl-C (never, when signals cannot be handled: the default action
/// still ends the process).
fn ctrl_c_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    })
}

/// Name of the built-in demo stream.
pub const DEMO_STREAM: &str = "ticker";

/// Parses the command line and runs it; the process's exit code.
pub fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Kda(args) => runtime.block_on(kda::run(args)),
        Command::Check(args) => match runtime.block_on(kda::check(args)) {
            Ok(true) => Ok(()),
            Ok(false) => {
                runtime.shutdown_timeout(Duration::from_millis(200));
                return ExitCode::FAILURE;
            }
            Err(e) => Err(e),
        },
    };
    // Do not wait for tasks of queries that were stopped.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the script named by the arguments.
fn script(args: &RunArgs) -> Result<String> {
    match (&args.file, &args.execute) {
        (_, Some(sql)) => Ok(sql.clone()),
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| exec_datafusion_err!("cannot read the script '{}': {e}", path.display())),
        (None, None) => Err(exec_datafusion_err!(
            "nothing to run: give a FILE.sql or -e 'SQL'"
        )),
    }
}

/// `dfstream run`: runs the script until every query ends, `--max-rows` or `--duration` is
/// reached, or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<()> {
    let sql = script(&args)?;
    let ctx = StreamContext::new();
    register_all(&ctx);
    if !args.no_demo {
        let demo = DemoTickerConfig {
            rate: args.rate,
            ..Default::default()
        };
        demo.validate()
            .map_err(|e| e.context(format!("--rate {}", args.rate)))?;
        ctx.run_script(&demo.ddl(DEMO_STREAM)).await.map_err(|e| {
            e.context(format!(
                "registering the demo stream '{DEMO_STREAM}' (use --no-demo to skip it)"
            ))
        })?;
    }
    let mut queries = ctx.run_script(&sql).await?;
    if queries.is_empty() {
        if !args.quiet {
            eprintln!("dfstream: the script has no queries; nothing to run");
        }
        return Ok(());
    }
    let sinks = queries.iter().filter(|q| q.sink_name().is_some()).count();
    if args.max_rows == Some(0) && sinks == 0 {
        return Ok(());
    }

    // Take each query's output stream; the queries stay for their live counters and for
    // stopping sinks. Each stream ends with a `None` marker so the loop knows which ended.
    // Queries that print are numbered among themselves (INSERT INTO a sink prints nothing).
    let mut printed_index = Vec::with_capacity(queries.len());
    let mut printing = 0;
    for q in &queries {
        printed_index.push(printing);
        if q.sink_name().is_none() {
            printing += 1;
        }
    }
    let streams: Vec<_> = queries
        .iter_mut()
        .enumerate()
        .map(|(i, q)| {
            let schema = q.schema();
            let stream =
                std::mem::replace(q.stream(), Box::pin(EmptyRecordBatchStream::new(schema)));
            stream
                .map(move |r| (i, Some(r)))
                .chain(futures::stream::iter([(i, None)]))
        })
        .collect();
    let mut merged = futures::stream::select_all(streams);

    let mut output = Output::new(args.format, printing);
    let mut status = Status::new(!args.quiet);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(deadline);
    let mut ctrl_c = ctrl_c_signal();

    // Once stopping, sinks close what they have open (objects completed) and their streams
    // end; other queries' output is no longer printed.
    let mut stopping = false;
    let mut sinks_open = sinks;
    let stop = |queries: &[StreamQuery], status: &mut Status, why: &str| {
        for q in queries {
            q.stop();
        }
        if sinks > 0 {
            status.note(&format!("{why}: closing the sinks (Ctrl-C again aborts)"));
        }
    };

    let result: Result<()> = loop {
        if stopping && sinks_open == 0 {
            break Ok(());
        }
        tokio::select! {
            biased;
            _ = &mut ctrl_c => {
                if stopping {
                    break Err(exec_datafusion_err!(
                        "interrupted again while closing the sinks: objects not yet complete were abandoned (no partial object is visible)"
                    ));
                }
                stopping = true;
                ctrl_c = ctrl_c_signal();
                stop(&queries, &mut status, "interrupted");
            }
            _ = &mut deadline, if args.duration.is_some() && !stopping => {
                stopping = true;
                stop(&queries, &mut status, "--duration reached");
            }
            item = merged.next() => match item {
                None => break Ok(()),
                Some((i, None)) => {
                    if queries[i].sink_name().is_some() {
                        sinks_open -= 1;
                    }
                }
                Some((i, Some(Err(e)))) => break Err(if queries.len() > 1 {
                    e.context(format!("query {}", i + 1))
                } else {
                    e
                }),
                Some((i, Some(Ok(batch)))) if queries[i].sink_name().is_some() => {
                    status.sink_reports(&batch);
                }
                Some((_, Some(Ok(_)))) if stopping => {}
                Some((i, Some(Ok(mut batch)))) => {
                    let mut done = false;
                    if let Some(max) = args.max_rows {
                        let left = max.saturating_sub(status.rows_out());
                        if batch.num_rows() as u64 >= left {
                            batch = batch.slice(0, left as usize);
                            done = true;
                        }
                    }
                    status.clear();
                    match output.write(printed_index[i], &batch) {
                        Ok(()) => {}
                        Err(e) if is_broken_pipe(&e) => break Ok(()),
                        Err(e) => break Err(DataFusionError::from(e).context("writing the results")),
                    }
                    status.add_output(batch.num_rows());
                    if done {
                        if sinks == 0 {
                            break Ok(());
                        }
                        stopping = true;
                        stop(&queries, &mut status, "--max-rows reached");
                    }
                }
            },
            _ = ticker.tick() => status.show(&queries),
        }
    };
    status.finish(&queries);
    result
}

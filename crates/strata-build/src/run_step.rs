//! The RUN step: handing the process to the configured [`RunExecutor`] and turning the
//! upper dir it leaves into the next layer.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use strata_dockerfile::Network;
use strata_layer::ChangeSource;
use strata_store::{DriverKind, LayerRecord};

use crate::builder::{Builder, Session, StageState};
use crate::layer_commit::{commit_layer, commit_tree};
use crate::metadata::{argv, shell_of};
use crate::op::{PlannedStep, RunOp};
use crate::run_executor::{DebugRequest, OutputSink, RunMount, RunNetwork, RunRequest};
use crate::BuildError;

/// How many bytes of a failed RUN's output the error keeps.
const RUN_TAIL: usize = 2048;

impl Builder<'_> {
    pub(crate) fn run(
        &self,
        s: &Session<'_>,
        stage: usize,
        n: usize,
        step: &PlannedStep,
        r: &RunOp,
        state: &StageState,
    ) -> Result<(String, LayerRecord), BuildError> {
        let sde = s.opts.source_date_epoch;
        let executor = self
            .executor
            .ok_or(BuildError::NoRunExecutor { line: step.line })?;
        let config = state.container_config();
        let args = argv(&r.command, &shell_of(&config));
        let chain = state.chain();
        let workdir = if config.working_dir.is_empty() {
            "/".to_string()
        } else {
            config.working_dir.clone()
        };
        let mut prepared = self.prepare_mounts(s, &r.mounts, &workdir, step.line)?;
        // A heredoc with a `#!` line runs as /dev/pipes/<name> from a read-only mount.
        let _script_dir = match &r.script {
            Some(script) => {
                let dir = s.area.scratch()?;
                let file = dir.path().join(&script.name);
                std::fs::write(&file, &script.content).map_err(BuildError::io("writing", &file))?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .map_err(BuildError::io("changing mode of", &file))?;
                prepared.mounts.push(RunMount {
                    source: file,
                    destination: format!("/dev/pipes/{}", script.name),
                    readonly: true,
                });
                Some(dir)
            }
            None => None,
        };
        let env: Vec<String> = step
            .env
            .iter()
            .chain(&step.proxy_env)
            .chain(&prepared.env)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let attach = |exit_code: Option<i32>| match exit_code {
            Some(code) => self.reporter.debug_shell_started(stage, n, code),
            None => self.reporter.debug_shell_ended(stage, n),
        };
        let request = RunRequest {
            store: self.store,
            temp_dir: s.area.path(),
            parent_chain: chain.as_ref(),
            args: args.clone(),
            env,
            user: config.user.clone(),
            workdir,
            network: match r.network {
                Some(Network::None) => RunNetwork::None,
                Some(Network::Host) => RunNetwork::Host,
                _ => s.opts.network,
            },
            mounts: prepared.mounts.clone(),
            output: Some(OutputSink(&|bytes| {
                self.reporter.step_output(stage, n, bytes)
            })),
            debug: s.opts.debug_on_fail.as_deref().map(|shell| DebugRequest {
                shell,
                attach: &attach,
            }),
        };
        let outcome = executor
            .run(&request)
            .map_err(|message| BuildError::RunFailed {
                line: step.line,
                message,
            })?;
        drop(prepared);
        let upper = UpperDir(outcome.upper);
        if outcome.exit_code != 0 {
            let start = outcome.log.len().saturating_sub(RUN_TAIL);
            return Err(BuildError::RunExit {
                line: step.line,
                code: outcome.exit_code,
                tail: String::from_utf8_lossy(&outcome.log[start..])
                    .trim_end()
                    .to_string(),
            });
        }
        let layer = match (self.store.snapshotter().kind(), &chain) {
            // vfs: the "upper" is a full copy of the parent tree; diff it against the parent.
            (DriverKind::Vfs, Some(parent)) => {
                let info = self.store.snapshotter().info(parent)?.ok_or_else(|| {
                    BuildError::at(step.line, format!("snapshot {parent} is missing"))
                })?;
                commit_tree(
                    self.store,
                    &s.area,
                    &state.diff_ids(),
                    &info.path,
                    &upper.0,
                    sde,
                    step.line,
                )?
            }
            _ => commit_layer(
                self.store,
                &state.diff_ids(),
                &upper.0,
                ChangeSource::OverlayUpper,
                sde,
                step.line,
            )?,
        };
        let prefix = if step.build_args.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = step
                .build_args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("|{} {} ", pairs.len(), pairs.join(" "))
        };
        Ok((format!("RUN {prefix}{} # buildkit", args.join(" ")), layer))
    }
}

/// An executor's upper dir, removed unless it became a snapshot.
struct UpperDir(PathBuf);

impl Drop for UpperDir {
    fn drop(&mut self) {
        // After a commit the dir has been renamed away and this finds nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Starts `salience serve` for prompt files: `lsp.salience.binary` from the settings, else `salience`
//! on the worktree's PATH. Settings under `lsp.salience` reach the server as initialization options
//! and as the `salience` configuration section.

use zed_extension_api::{self as zed, serde_json, settings::LspSettings, LanguageServerId, Result};

const SERVER: &str = "salience";

struct Salience;

impl zed::Extension for Salience {
    fn new() -> Self {
        Salience
    }

    fn language_server_command(&mut self, _id: &LanguageServerId, worktree: &zed::Worktree) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(SERVER, worktree).ok().and_then(|s| s.binary);
        let configured = binary.as_ref().and_then(|b| b.path.clone());
        let command = match configured.or_else(|| worktree.which(SERVER)) {
            Some(path) => path,
            None => return Err("salience is not on PATH: `pip install salience`, or set lsp.salience.binary.path".into()),
        };
        let args = binary.and_then(|b| b.arguments).unwrap_or_else(|| vec!["serve".to_string()]);
        Ok(zed::Command { command, args, env: Default::default() })
    }

    fn language_server_initialization_options(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(LspSettings::for_worktree(SERVER, worktree).ok().and_then(|s| s.settings))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        let settings = LspSettings::for_worktree(SERVER, worktree).ok().and_then(|s| s.settings);
        Ok(settings.map(|s| serde_json::json!({ "salience": s })))
    }
}

zed::register_extension!(Salience);

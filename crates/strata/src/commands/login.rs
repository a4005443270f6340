//! `strata login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `strata logout
//! [SERVER]`: credentials checked against the registry, then kept where Docker keeps them
//! (`$DOCKER_CONFIG/config.json` or its credential helper).

use std::io::{BufRead, IsTerminal, Write};
use strata_exit::ExitStatus;

use strata_distribution::{Credential, DockerCredentials, DOCKER_HUB_AUTH_KEY};

use crate::cli::{LoginArgs, LogoutArgs};
use crate::failure::{Context, Failure};
use crate::render::out;

/// `https://index.docker.io/v1/`, `docker.io`, `http://host:5000/` → the registry host.
fn registry_host(server: Option<&str>) -> Result<String, Failure> {
    let Some(server) = server else {
        return Ok("docker.io".to_string());
    };
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io",
        h => h,
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !valid {
        return Err(Failure::new(format!(
            "invalid registry address {server:?}: expected HOST[:PORT]"
        )));
    }
    Ok(host.to_string())
}

fn shown(host: &str) -> &str {
    if host == "docker.io" {
        DOCKER_HUB_AUTH_KEY
    } else {
        host
    }
}

#[allow(clippy::print_stderr)]
pub(crate) fn login(a: LoginArgs) -> Result<ExitStatus, Failure> {
    let host = registry_host(a.server.as_deref())?;
    if a.password.is_some() && a.password_stdin {
        return Err(Failure::new(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let stdin = std::io::stdin();
    let username = match a.username {
        Some(u) => u,
        None if a.password_stdin => {
            return Err(Failure::new("--password-stdin needs --username"));
        }
        None if stdin.is_terminal() => prompt("Username: ")?,
        None => {
            return Err(Failure::new(
                "cannot ask for a username: standard input is not a terminal",
            )
            .with_hint("give --username and --password-stdin"));
        }
    };
    let password = match a.password {
        Some(p) => p,
        None if a.password_stdin => {
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        None if stdin.is_terminal() => prompt_hidden("Password: ")?,
        None => {
            return Err(Failure::new(
                "cannot ask for a password: standard input is not a terminal",
            )
            .with_hint("pipe it in with --password-stdin"));
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failure::new("username and password must not be empty"));
    }
    let credential = Credential::Basic { username, password };
    let client = super::registry_client()?;
    client.login(&host, &credential).map_err(|e| {
        Failure::new(format!(
            "login to {} failed: {}",
            shown(&host),
            strata_exit::ErrorChain(&e)
        ))
    })?;
    let creds = DockerCredentials::from_env();
    if creds.stores_in_file(&host) {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            creds.config_path().display()
        );
        eprintln!("Configure a credential helper to remove this warning. See");
        eprintln!("https://docs.docker.com/engine/reference/commandline/login/#credentials-store");
        eprintln!();
    }
    creds
        .store(&host, &credential)
        .context("storing the credentials")?;
    out("Login Succeeded\n");
    Ok(ExitStatus::Success)
}

pub(crate) fn logout(a: LogoutArgs) -> Result<ExitStatus, Failure> {
    let host = registry_host(a.server.as_deref())?;
    let creds = DockerCredentials::from_env();
    if creds.erase(&host).context("removing the credentials")? {
        out(&format!(
            "Removing login credentials for {}\n",
            shown(&host)
        ));
    } else {
        out(&format!("Not logged in to {}\n", shown(&host)));
    }
    Ok(ExitStatus::Success)
}

#[allow(clippy::print_stderr)]
fn prompt(label: &str) -> Result<String, Failure> {
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim().to_string())
}

/// Reads a line with echo off, restoring the terminal on every path.
#[allow(clippy::print_stderr)]
fn prompt_hidden(label: &str) -> Result<String, Failure> {
    let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr initialises `saved` when it returns 0.
    if unsafe { libc::tcgetattr(0, saved.as_mut_ptr()) } != 0 {
        return Err(Failure::new(format!(
            "reading the terminal settings: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: initialised by the successful tcgetattr above.
    let saved = unsafe { saved.assume_init() };
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: both calls only read the termios structs passed.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    let result = prompt(label);
    // SAFETY: as above; restores what was there.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    eprintln!();
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_addresses_like_docker_login_takes_them() {
        let host = |s| super::registry_host(Some(s)).map_err(|f| f.message);
        assert_eq!(host("https://index.docker.io/v1/").unwrap(), "docker.io");
        assert_eq!(host("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(host("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
        assert!(host("a b").is_err());
        assert_eq!(super::registry_host(None).unwrap_or_default(), "docker.io");
    }
}

//! The `realtime-gateway` binary: parse the command line, read the config, then serve, check
//! specs, generate TypeScript from them, mint a token, probe a running gateway's health or hash the admin password. Everything
//! else lives in the library.

use std::{
    io::{BufRead, BufReader, IsTerminal, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    process::ExitCode,
};

use clap::Parser;
use realtime_gateway::{
    app::App,
    auth::TokenSigner,
    cli::{Cli, CodegenTarget, Command},
    codegen::typescript,
    config::{Config, NamespaceSource, parse_duration},
    page::dev::DevCredentials,
    spec, telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_deref()),
        Command::Check { dir } => check(cli.config.as_deref(), dir),
        Command::Codegen { target: CodegenTarget::Typescript { out, specs } } => {
            codegen_typescript(cli.config.as_deref(), specs, &out)
        }
        Command::Token { sub, tenant, roles, ttl } => {
            token(cli.config.as_deref(), &sub, tenant.as_deref(), &roles, &ttl)
        }
        Command::Healthcheck { timeout } => healthcheck(cli.config.as_deref(), &timeout),
        Command::HashPassword { cost } => hash_password(cost),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    // Dropped last, after the runtime has stopped: what is still queued is written out then.
    let _logs = telemetry::init(&config.log_level, config.log_format)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let app = App::build(&config).await?;
        if config.dev_mode {
            announce_dev_mode(&config, app.local_addr())?;
        }
        app.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Dev mode: say loudly that it is not for production, and hand out a working token (and API
/// key), the one time secrets are printed, because trying the gateway is the point.
fn announce_dev_mode(config: &Config, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let Some(dev) = DevCredentials::from_config(config)? else { return Ok(()) };
    let token = dev.token();
    let api_key = dev.api_key();
    let port = addr.port();
    // On a terminal the banner shows the token and key; the log line then does not repeat them.
    let banner = std::io::stderr().is_terminal();
    if banner {
        eprintln!();
        eprintln!("  DEV MODE: JWT_SECRET is not set, so tokens are signed with a random secret that dies with");
        eprintln!("  this process. Do not run this in production: set JWT_SECRET (or JWT_PUBLIC_KEY) and API_KEYS.");
        eprintln!();
        eprintln!("  Demo token (user demo-user, tenant demo-tenant, role admin, valid 24h):");
        eprintln!("    {token}");
        if let Some(key) = api_key {
            eprintln!("  Demo API key (API_KEYS is not set):");
            eprintln!("    {key}");
        }
        eprintln!();
        eprintln!("  Try it:   open http://localhost:{port}/ (token and key prefilled)");
        eprintln!("  Connect:  io('http://localhost:{port}/workflow', {{ auth: {{ token }} }})");
        eprintln!("  Publish:  curl -X POST http://localhost:{port}/api/v1/events -H 'X-API-Key: <key>' \\");
        eprintln!(
            "              -H 'Content-Type: application/json' -d '{{\"type\":\"execution.started\",\"tenantId\":\"demo-tenant\",\"data\":{{\"executionId\":\"e1\"}}}}'"
        );
        eprintln!();
    }
    if banner {
        tracing::warn!("dev mode: JWT_SECRET is not set; tokens use a random secret. Not for production");
    } else {
        tracing::warn!(
            demo_token = %token,
            demo_api_key = api_key.unwrap_or("(set by API_KEYS)"),
            "dev mode: JWT_SECRET is not set; tokens use a random secret. Not for production"
        );
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// The config, for a subcommand: its warnings go to stderr, as there are no logs.
fn load_config(config_file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let config = Config::load(config_file)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

/// The specs the gateway would serve (those of `dir` when given), and where they are, for messages.
fn served_specs(
    config_file: Option<&std::path::Path>,
    dir: Option<std::path::PathBuf>,
) -> anyhow::Result<(Result<Vec<spec::NamespaceSpec>, spec::SpecErrors>, String)> {
    Ok(match dir {
        Some(dir) => specs_of(NamespaceSource::Dir(dir)),
        None => specs_of(load_config(config_file)?.namespaces),
    })
}

/// The specs of `source`, and where they are, for messages.
fn specs_of(source: NamespaceSource) -> (Result<Vec<spec::NamespaceSpec>, spec::SpecErrors>, String) {
    match source {
        NamespaceSource::Dir(dir) => (spec::load_dir(&dir), dir.display().to_string()),
        NamespaceSource::Embedded => (spec::load_embedded(), "the built-in specs".to_string()),
    }
}

fn check(config_file: Option<&std::path::Path>, dir: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    // The config too: `forward` destinations are its backends (`BACKENDS_FILE`).
    let config = load_config(config_file)?;
    let (loaded, source) = specs_of(dir.map_or(config.namespaces, NamespaceSource::Dir));
    let destinations = config.backends.destinations();
    let loaded = loaded.and_then(|specs| {
        spec::check_destinations(&specs, &destinations, &config.backends.fire_and_forget()).map(|()| specs)
    });
    match loaded {
        Ok(specs) => {
            let paths: Vec<String> = specs.iter().map(spec::NamespaceSpec::served_as).collect();
            println!("ok: {} namespace spec(s) in {source}: {}", specs.len(), paths.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("\n{} error(s) in {source}", errors.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Writes the TypeScript of the served specs into `out`, and removes the generated files there
/// that the specs no longer give (never a file it did not write).
fn codegen_typescript(
    config_file: Option<&std::path::Path>,
    specs: Option<std::path::PathBuf>,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let (loaded, source) = served_specs(config_file, specs)?;
    let specs = match loaded {
        Ok(specs) => specs,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("\n{} error(s) in {source}: nothing written", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let files = typescript::generate(&specs);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for entry in std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".ts") && !files.iter().any(|f| f.name == name) && typescript::is_generated(&path) {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for file in &files {
        let path = out.join(&file.name);
        std::fs::write(&path, &file.text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("ok: {} file(s) in {} from {} namespace spec(s) in {source}", files.len(), out.display(), specs.len());
    Ok(ExitCode::SUCCESS)
}

fn token(
    config_file: Option<&std::path::Path>,
    sub: &str,
    tenant: Option<&str>,
    roles: &[String],
    ttl: &str,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config_file)?;
    if config.dev_mode {
        anyhow::bail!(
            "JWT_SECRET is not set. A gateway in dev mode signs with a random secret of its own (use the token it printed), \
             or set the same JWT_SECRET for the gateway and for this command"
        );
    }
    let ttl = parse_duration(ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    let signer = TokenSigner::new(&config.jwt)?;
    println!("{}", signer.mint(&config.jwt, sub, tenant, roles, ttl));
    Ok(ExitCode::SUCCESS)
}

/// `GET /healthz` on the gateway this config describes, over plain HTTP/1.1 on std's TCP (no
/// runtime, no HTTP client): a container's `HEALTHCHECK` in an image that has no curl. Exit 0 on
/// a 200, 1 otherwise, as Docker expects.
fn healthcheck(config_file: Option<&std::path::Path>, timeout: &str) -> anyhow::Result<ExitCode> {
    let config = load_config(config_file)?;
    let timeout = parse_duration(timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    anyhow::ensure!(config.listen.port() != 0, "PORT is 0: there is no known port to probe");
    // A gateway bound to every address (HOST=0.0.0.0 or ::) is reached on loopback.
    let ip = match config.listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, config.listen.port());
    let status_line = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        // One write: `write!` would send the request in pieces.
        stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut line = String::new();
        BufReader::new(stream.take(1024)).read_line(&mut line)?;
        Ok(line.trim_end().to_string())
    };
    match status_line() {
        // `HTTP/1.1 200 OK`
        Ok(line) if line.split_whitespace().nth(1) == Some("200") => {
            println!("healthy: http://{addr}/healthz answered `{line}`");
            Ok(ExitCode::SUCCESS)
        }
        Ok(line) => {
            eprintln!("unhealthy: http://{addr}/healthz answered `{line}`");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("unhealthy: http://{addr}/healthz: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads a password (without echo on a terminal) and prints its bcrypt hash.
fn hash_password(cost: u32) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        eprint!("Password (not shown): ");
        let line = without_echo(|| {
            let mut line = String::new();
            stdin.read_line(&mut line).map(|_| line)
        })?;
        eprintln!();
        line
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line
    };
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    anyhow::ensure!(password.len() <= 72, "bcrypt uses only the first 72 bytes of a password: choose a shorter one");
    println!("{}", bcrypt::hash(password, cost)?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `read` with the terminal's echo off (on Unix), restoring it after.
fn without_echo<T>(read: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    #[cfg(unix)]
    {
        let fd = libc::STDIN_FILENO;
        // SAFETY: termios is plain data; tcgetattr fills it for a terminal, checked by its result.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } == 0 {
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            // SAFETY: both calls get a valid termios for the same descriptor.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
            let result = read();
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
            return result;
        }
    }
    read()
}

use clap::Parser;

fn main() {
    let cli = facegate::cli::Cli::parse();
    let level = match cli.global.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // ONNX Runtime's own chatter stays at warn unless asked for.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(format!("{level},ort=warn")))
        .format_timestamp_millis()
        .init();
    match facegate::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    }
}

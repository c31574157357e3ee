//! `runtime.execution_provider`: asking for CUDA where ONNX Runtime cannot provide it (this
//! machine's CPU-only library, no GPU) must not fail; the models run on the CPU and give the
//! same faces, people and similarities as a plain CPU configuration, and `doctor` says which provider runs.

mod common;

use facegate::vision::runtime::ExecutionProvider;

/// ONNX Runtime allows one environment per process, so this process loads only the CUDA request
/// and the comparison with a plain CPU configuration goes through the binary.
#[test]
fn cuda_request_on_a_cpu_only_library_runs_on_the_cpu() {
    let cuda_in_library = {
        use ort::ep::ExecutionProvider as _;
        let engine = common::engine_with(|c| c.runtime.execution_provider = ExecutionProvider::Cuda);
        let cuda_in_library = ort::ep::CUDA::is_available().unwrap_or(false);
        if cuda_in_library {
            // A GPU build of ONNX Runtime: either CUDA runs, or the reason it does not is kept.
            let used = engine.runtime.execution_provider();
            assert!(used == ExecutionProvider::Cuda || engine.runtime.fallback_reason().is_some());
        } else {
            assert_eq!(engine.runtime.execution_provider(), ExecutionProvider::Cpu);
            let why = engine.runtime.fallback_reason().expect("a fallback keeps its reason");
            assert!(why.contains("CPU-only build") && why.contains("runtime.library"), "{why}");
        }
        cuda_in_library
    };
    if cuda_in_library {
        eprintln!("this ONNX Runtime has CUDA: results may differ slightly, the identity check below still holds");
    }

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    for name in ["astronaut", "hopper"] {
        let photo = common::fixture(&format!("faces/{name}/01.jpg"));
        let out = common::facegate(&["--db", db, "enroll", "--name", name, photo.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    }
    let group = common::fixture("group/01.jpg");
    let identify = |provider: &str| {
        let config = dir.path().join(format!("{provider}.toml"));
        std::fs::write(&config, format!("[runtime]\nexecution_provider = \"{provider}\"\n")).unwrap();
        let out = common::facegate(&[
            "--config",
            config.to_str().unwrap(),
            "--db",
            db,
            "identify",
            "--json",
            group.to_str().unwrap(),
        ]);
        common::assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{provider}: {}", common::stderr(&out));
        (common::stdout(&out), common::stderr(&out))
    };
    let (cpu, _) = identify("cpu");
    for name in ["\"person\":\"astronaut\"", "\"person\":\"hopper\""] {
        assert!(cpu.contains(name), "the CPU run must name both people: {cpu}");
    }
    for provider in ["cuda", "auto"] {
        let (got, log) = identify(provider);
        if !cuda_in_library {
            // Same kernels, same numbers: boxes, people and similarities identical to the digit.
            assert_eq!(got, cpu, "{provider}: results differ from the CPU configuration");
            if provider == "cuda" {
                assert!(log.contains("running the models on the CPU"), "cuda must warn about its fallback: {log}");
            }
        }
        for name in ["\"person\":\"astronaut\"", "\"person\":\"hopper\""] {
            assert!(got.contains(name), "{provider}: {got}");
        }
    }
}

#[test]
fn doctor_names_the_execution_provider_in_use_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cuda.toml");
    std::fs::write(&config, "[runtime]\nexecution_provider = \"cuda\"\n").unwrap();
    let db = dir.path().join("doctor.db");
    let out = common::facegate(&["--config", config.to_str().unwrap(), "--db", db.to_str().unwrap(), "doctor"]);
    let text = common::stdout(&out);
    let line = text.lines().find(|l| l.contains("onnxruntime:")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("ok"), "a CPU fallback still runs the models: {line}");
    assert!(line.contains("execution provider"), "{line}");
    if line.contains("execution provider cpu") {
        assert!(line.contains("runtime.execution_provider = \"cuda\" but"), "the fallback must say why: {line}");
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

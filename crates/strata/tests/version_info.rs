//! `version`, `info`, `completion` and `man`: Docker's field names for `--format`, and
//! generated shell completions and man pages that cover every command.

mod common;

use common::Env;

#[test]
fn version_and_info_answer_docker_style_format_strings() {
    let env = Env::new();
    let v = env.ok(&[
        "version",
        "--format",
        "{{.Client.Version}} {{.Server.Version}}",
    ]);
    let want = env!("CARGO_PKG_VERSION");
    assert_eq!(v, format!("{want} {want}\n"));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["version", "--format", "json"])).unwrap();
    assert!(json["Client"]["RustVersion"]
        .as_str()
        .unwrap()
        .starts_with("rustc "));
    assert_eq!(json["Client"]["Os"], "linux");
    assert!(env.ok(&["version"]).contains("Git commit:"));

    env.import_busybox();
    env.ok(&["create", "--name", "c", "busybox:local", "true"]);
    let info = env.ok(&[
        "info",
        "--format",
        "{{.Driver}} {{.Containers}} {{.ContainersRunning}} {{.Images}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info,
        format!("overlay 1 0 1 {}\n", env.root().display()),
        "{info}"
    );
    let text = env.ok(&["info"]);
    for field in [
        "Storage Driver: overlay",
        "Cgroup Version:",
        "Network Backend: pasta",
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }
    assert!(env
        .fails(&["info", "--format", "{{.Nope"])
        .contains("unclosed action"));
}

#[test]
fn completions_and_man_pages_cover_the_commands() {
    let env = Env::new();
    let bash = env.ok(&["completion", "bash"]);
    assert!(
        bash.contains("complete -F _strata") && bash.contains("--publish"),
        "bash"
    );
    assert!(env
        .ok(&["completion", "zsh"])
        .starts_with("#compdef strata"));
    assert!(env
        .ok(&["completion", "fish"])
        .contains("complete -c strata"));
    assert!(env.fails(&["completion", "tcsh"]).contains("invalid value"));
    let dir = env.path("man1");
    env.ok(&["man", dir.to_str().unwrap()]);
    for page in [
        "strata.1",
        "strata-run.1",
        "strata-image-ls.1",
        "strata-builder-prune.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page} is roff");
    }
    let run = std::fs::read_to_string(dir.join("strata-run.1")).unwrap();
    assert!(
        run.contains("strata run") && run.contains("publish"),
        "{run}"
    );
}

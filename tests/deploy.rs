//! The deploy files agree with the code: every environment variable they set is a setting,
//! the probes hit routes that exist, the Slack manifest's command URL is the route, and
//! its scopes cover every Slack method the code calls.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kpibot::settings::Settings;
use serde_yaml::Value;

/// Variables read by something other than kpibot's settings.
const OTHER_VARIABLES: [&str; 2] = ["RUST_LOG", "GOOGLE_APPLICATION_CREDENTIALS"];

/// Every Slack Web API method kpibot calls, by slack-morphism's function name, with the
/// bot scope it needs (`None`: no scope, or a token other than the bot's).
const SLACK_METHODS: [(&str, &str, Option<&str>); 15] = [
    ("views_publish", "views.publish", None),
    ("chat_post_message", "chat.postMessage", Some("chat:write")),
    ("chat_update", "chat.update", Some("chat:write")),
    ("conversations_open", "conversations.open", Some("im:write")),
    (
        "chat_post_ephemeral",
        "chat.postEphemeral",
        Some("chat:write"),
    ),
    ("chat_get_permalink", "chat.getPermalink", None),
    (
        "get_upload_url_external",
        "files.getUploadURLExternal",
        Some("files:write"),
    ),
    ("files_upload_via_url", "(upload URL)", None),
    (
        "files_complete_upload_external",
        "files.completeUploadExternal",
        Some("files:write"),
    ),
    (
        "conversations_list",
        "conversations.list",
        Some("channels:read"),
    ),
    (
        "conversations_history",
        "conversations.history",
        Some("channels:history"),
    ),
    (
        "conversations_replies",
        "conversations.replies",
        Some("channels:history"),
    ),
    (
        "usergroups_list",
        "usergroups.list",
        Some("usergroups:read"),
    ),
    ("users_info", "users.info", Some("users:read")),
    ("post_webhook_message", "(response_url)", None),
];

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn yaml_documents() -> Vec<(PathBuf, Value)> {
    let mut paths = Vec::new();
    files(&common::repo_path("deploy"), "yaml", &mut paths);
    assert!(paths.len() >= 8, "deploy/ lost its manifests: {paths:?}");
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let value: Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", p.display()));
            (p, value)
        })
        .collect()
}

/// Every `env` list entry anywhere in a manifest: (name, literal value if any).
fn env_entries(value: &Value, out: &mut Vec<(String, Option<String>)>) {
    match value {
        Value::Mapping(map) => {
            for (key, inner) in map {
                if key.as_str() == Some("env")
                    && let Some(list) = inner.as_sequence()
                {
                    for item in list {
                        let name = item["name"].as_str().unwrap().to_string();
                        out.push((name, item["value"].as_str().map(str::to_string)));
                    }
                }
                env_entries(inner, out);
            }
        }
        Value::Sequence(list) => list.iter().for_each(|v| env_entries(v, out)),
        _ => {}
    }
}

/// Every `httpGet.path` with its probe name.
fn probe_paths(value: &Value, out: &mut Vec<(String, String)>) {
    if let Value::Mapping(map) = value {
        for (key, inner) in map {
            let key = key.as_str().unwrap_or_default();
            if key.ends_with("Probe")
                && let Some(path) = inner["httpGet"]["path"].as_str()
            {
                out.push((key.to_string(), path.to_string()));
            }
            probe_paths(inner, out);
        }
    } else if let Value::Sequence(list) = value {
        list.iter().for_each(|v| probe_paths(v, out));
    }
}

/// Variables set by the Dockerfile (`ENV A=… \ B=…`) and the systemd unit.
fn plain_text_variables() -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    let docker = common::repo_path("deploy/Dockerfile");
    let text = std::fs::read_to_string(&docker).unwrap();
    let mut in_env = false;
    for line in text.lines() {
        let line = line.trim();
        let body = if let Some(rest) = line.strip_prefix("ENV ") {
            rest
        } else if in_env {
            line
        } else {
            continue;
        };
        in_env = body.ends_with('\\');
        let (name, value) = body.trim_end_matches('\\').trim().split_once('=').unwrap();
        out.push((docker.clone(), name.to_string(), value.to_string()));
    }
    let unit = common::repo_path("deploy/systemd/kpibot.service");
    for line in std::fs::read_to_string(&unit).unwrap().lines() {
        if let Some(assignment) = line.strip_prefix("Environment=") {
            let (name, value) = assignment.split_once('=').unwrap();
            out.push((unit.clone(), name.to_string(), value.to_string()));
        }
    }
    out
}

#[test]
fn every_variable_the_deploy_files_set_is_one_kpibot_understands() {
    let known: BTreeSet<String> = Settings::env_var_names().into_iter().collect();
    assert!(known.contains("KPIBOT__SLACK__BOT_TOKEN") && known.contains("KPIBOT__HTTP__LISTEN"));
    let mut checked = 0;
    let mut set: Vec<(PathBuf, String, Option<String>)> = Vec::new();
    for (path, doc) in yaml_documents() {
        let mut entries = Vec::new();
        env_entries(&doc, &mut entries);
        set.extend(entries.into_iter().map(|(n, v)| (path.clone(), n, v)));
    }
    set.extend(
        plain_text_variables()
            .into_iter()
            .map(|(p, n, v)| (p, n, Some(v))),
    );
    for (path, name, value) in &set {
        checked += 1;
        if OTHER_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        assert!(
            known.contains(name),
            "{} sets {name}, which no setting reads",
            path.display()
        );
        // A literal value must also be one the settings accept.
        if let Some(value) = value {
            Settings::load_from(None, [(name.clone(), value.clone())]).unwrap_or_else(|e| {
                panic!(
                    "{} sets {name}={value}, which kpibot rejects: {e}",
                    path.display()
                )
            });
        }
    }
    assert!(checked >= 30, "only {checked} variables found");
}

#[test]
fn probes_and_health_checks_hit_routes_that_exist() {
    let mut seen = 0;
    for (path, doc) in yaml_documents() {
        let mut probes = Vec::new();
        probe_paths(&doc, &mut probes);
        for (probe, route) in probes {
            seen += 1;
            let expected = if probe == "readinessProbe" {
                kpibot::ops::READY_PATH
            } else {
                kpibot::ops::HEALTH_PATH
            };
            assert_eq!(route, expected, "{} {probe}", path.display());
        }
    }
    assert!(seen >= 5, "probes missing: {seen}");
    let docker = std::fs::read_to_string(common::repo_path("deploy/Dockerfile")).unwrap();
    assert!(docker.contains(r#"HEALTHCHECK"#) && docker.contains(r#"CMD ["kpibot", "health"]"#));
}

#[test]
fn the_slack_manifests_match_the_route_and_cover_every_method_called() {
    // Which slack-morphism functions does the code call?
    let mut sources = Vec::new();
    files(&common::repo_path("src"), "rs", &mut sources);
    let mut called = BTreeSet::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        // Only Slack code: other clients (BigQuery's) have their own `self.client`.
        if !text.contains("slack_morphism") {
            continue;
        }
        for receiver in ["session.", "self.client."] {
            for piece in text.split(receiver).skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if piece[name.len()..].starts_with('(')
                    && !name.is_empty()
                    && name != "open_session"
                {
                    called.insert(name);
                }
            }
        }
    }
    let known: BTreeSet<&str> = SLACK_METHODS.iter().map(|(f, _, _)| *f).collect();
    for name in &called {
        assert!(
            known.contains(name.as_str()),
            "the code calls Slack's `{name}`: add it, with its scope, to SLACK_METHODS and the manifests"
        );
    }
    assert!(called.len() >= 9, "found only {called:?}");
    for (path, doc) in yaml_documents() {
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("slack-app-manifest")
        {
            continue;
        }
        let scopes: BTreeSet<&str> = doc["oauth_config"]["scopes"]["bot"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for (function, method, scope) in SLACK_METHODS {
            if let Some(scope) = scope.filter(|_| called.contains(function)) {
                assert!(
                    scopes.contains(scope),
                    "{}: {method} needs {scope}",
                    path.display()
                );
            }
        }
        assert!(
            scopes.contains("commands"),
            "{}: /kpi needs `commands`",
            path.display()
        );
        let command = &doc["features"]["slash_commands"][0];
        assert_eq!(command["command"], "/kpi");
        let socket = doc["settings"]["socket_mode_enabled"].as_bool().unwrap();
        match command["url"].as_str() {
            Some(url) => {
                assert!(!socket);
                assert!(url.starts_with("https://"), "{url}");
                assert!(url.ends_with(kpibot::adhoc::slash::COMMANDS_PATH), "{url}");
            }
            None => assert!(socket, "{}: an HTTP command needs a url", path.display()),
        }
        // The buttons under every post: on, and over HTTP at the interactions route.
        let interactivity = &doc["settings"]["interactivity"];
        assert_eq!(
            interactivity["is_enabled"].as_bool(),
            Some(true),
            "{}: the buttons under posts need interactivity",
            path.display()
        );
        match interactivity["request_url"].as_str() {
            Some(url) => {
                assert!(!socket);
                assert!(url.starts_with("https://"), "{url}");
                assert!(
                    url.ends_with(kpibot::adhoc::interact::INTERACTIONS_PATH),
                    "{url}"
                );
                let commands = command["url"].as_str().unwrap_or_default();
                assert_eq!(
                    url.trim_end_matches(kpibot::adhoc::interact::INTERACTIONS_PATH),
                    commands.trim_end_matches(kpibot::adhoc::slash::COMMANDS_PATH),
                    "commands and clicks go to the same host"
                );
            }
            None => assert!(
                socket,
                "{}: HTTP interactivity needs a request_url",
                path.display()
            ),
        }
        // The Home tab: enabled, and its opening delivered (to the events route over HTTP).
        assert_eq!(
            doc["features"]["app_home"]["home_tab_enabled"].as_bool(),
            Some(true),
            "{}: the Home tab",
            path.display()
        );
        let events = &doc["settings"]["event_subscriptions"];
        assert!(
            events["bot_events"]
                .as_sequence()
                .is_some_and(|e| e.iter().any(|e| e.as_str() == Some("app_home_opened"))),
            "{}: app_home_opened",
            path.display()
        );
        match events["request_url"].as_str() {
            Some(url) => {
                assert!(!socket);
                assert!(url.ends_with(kpibot::adhoc::events::EVENTS_PATH), "{url}");
            }
            None => assert!(socket, "{}: HTTP events need a request_url", path.display()),
        }
    }
}

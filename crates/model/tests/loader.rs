//! The loader's contract: what loads, what is skipped, and how every failure is located.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use portcullis_model::{
    ApiVersion, Kind, LoadErrorKind, LoadOptions, Loader, Object, StringMatch, to_json, to_yaml,
};

const GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [\"*.example.com\"]
    tls:
      mode: SIMPLE
      credentialName: example-cert
";

fn load(text: &str) -> portcullis_model::Loaded {
    Loader::new().read_str("test.yaml", text)
}

#[test]
fn misspelled_tls_mode_names_file_line_column_path_and_the_accepted_modes() {
    let loaded = load(&GATEWAY.replace("mode: SIMPLE", "mode: SIMPL"));
    let [err] = loaded.errors() else {
        panic!("one error expected: {:?}", loaded.errors())
    };
    assert_eq!(err.file(), "test.yaml");
    assert_eq!((err.line(), err.column()), (Some(13), Some(13)));
    assert_eq!(err.path(), "spec.servers[0].tls.mode");
    assert_eq!(err.kind(), LoadErrorKind::InvalidValue);
    for mode in [
        "PASSTHROUGH",
        "SIMPLE",
        "MUTUAL",
        "AUTO_PASSTHROUGH",
        "ISTIO_MUTUAL",
        "OPTIONAL_MUTUAL",
    ] {
        assert!(err.message().contains(mode), "{err}");
    }
    assert!(
        err.to_string()
            .starts_with("test.yaml:13:13: spec.servers[0].tls.mode: unknown variant `SIMPL`"),
        "{err}"
    );
}

#[test]
fn unknown_field_is_an_error_at_its_key_by_default_and_a_warning_when_lenient() {
    let text = GATEWAY.replace("    hosts:", "    hostz: [a]\n    hosts:");
    let loaded = load(&text);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.kind(), LoadErrorKind::UnknownField);
    assert_eq!(err.path(), "spec.servers[0].hostz");
    assert_eq!((err.line(), err.column()), (Some(11), Some(5)));
    assert!(err.message().contains("expected one of `port`"), "{err}");

    let mut options = LoadOptions::default();
    options.lenient_unknown_fields = true;
    let lenient = Loader::with_options(options).read_str("test.yaml", &text);
    assert!(lenient.errors().is_empty(), "{:?}", lenient.errors());
    assert_eq!(lenient.documents().len(), 1);
    let [warning] = lenient.warnings() else {
        panic!("{:?}", lenient.warnings())
    };
    assert_eq!(warning.path(), "spec.servers[0].hostz");
    assert_eq!(warning.line(), Some(11));
}

#[test]
fn oneof_with_two_branches_does_not_load() {
    let text = "\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - match:
    - uri: {prefix: /a, exact: /b}
    route:
    - destination: {host: r}
";
    let loaded = load(text);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "spec.http[0].match[0].uri");
    assert_eq!(err.line(), Some(8));
    assert!(
        err.message().contains("only one of exact, prefix, regex"),
        "{err}"
    );
}

#[test]
fn duplicate_keys_are_errors_with_their_line() {
    let loaded = load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n");
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.kind(), LoadErrorKind::Syntax);
    assert_eq!(err.line(), Some(5));
    assert!(
        err.message().contains("duplicate mapping key `name`"),
        "{err}"
    );
}

#[test]
fn metadata_that_is_not_a_mapping_is_refused_where_it_is() {
    // A sequence would otherwise decode field by field (`name` first) and skip the default
    // namespace: a fuzzing finding (fuzz/regressions/loader/metadata-as-a-sequence).
    // The error stands where the value starts.
    for (metadata, line) in [("\n  - \"*\"", 4), (" public", 3), (" 7", 3)] {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:{metadata}\nspec: {{}}\n"
        );
        let loaded = load(&text);
        assert!(loaded.documents().is_empty(), "{text}");
        let [err] = loaded.errors() else {
            panic!("{text}: {:?}", loaded.errors())
        };
        assert_eq!(err.kind(), LoadErrorKind::InvalidValue, "{text}");
        assert_eq!(err.path(), "metadata", "{text}");
        assert_eq!(err.line(), Some(line), "{text}");
        assert!(err.message().contains("must be a mapping"), "{err}");
    }
}

#[test]
fn streams_keep_going_after_a_bad_document_and_count_documents_in_place() {
    let text = format!(
        "{GATEWAY}---\n---\n{bad}---\n{GATEWAY}",
        bad = GATEWAY.replace("443", "\"x\"")
    );
    let loaded = load(&text);
    assert_eq!(loaded.documents().len(), 2);
    assert_eq!(loaded.documents()[1].source.index, 3);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.document(), 2);
    assert_eq!(err.path(), "spec.servers[0].port.number");
    // The bad document starts on line 17 and its port on its 10th line: lines count from the
    // top of the file, not of the document.
    assert_eq!(err.line(), Some(16 + 10));
}

#[test]
fn other_kinds_and_groups_are_skipped_not_errors() {
    let text = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway-api}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
";
    let loaded = load(text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
    assert!(loaded.documents().is_empty());
    let kinds: Vec<_> = loaded.skipped().iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["Gateway", "Sidecar", "ConfigMap"]);
    assert_eq!(loaded.skipped()[0].name, "gateway-api");
}

#[test]
fn unknown_networking_version_lists_the_supported_ones() {
    let loaded = load(&GATEWAY.replace("networking.istio.io/v1", "networking.istio.io/v2"));
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "apiVersion");
    assert_eq!(err.line(), Some(1));
    assert!(
        err.message().contains("networking.istio.io/v1alpha3"),
        "{err}"
    );
}

#[test]
fn list_items_load_with_their_item_index_and_absolute_lines() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1alpha3
  kind: DestinationRule
  metadata: {name: a}
  spec: {host: a}
- apiVersion: networking.istio.io/v1alpha3
  kind: DestinationRule
  metadata: {name: b}
  spec: {host: b, subsets: [{name: v1, labelz: {}}]}
";
    let loaded = load(text);
    assert_eq!(loaded.documents().len(), 1);
    assert_eq!(loaded.documents()[0].source.item, Some(0));
    assert_eq!(loaded.documents()[0].source.location.line, 4);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "spec.subsets[0].labelz");
    assert_eq!(err.line(), Some(11));
}

/// Item 1 of a List with more than ten items is located by its own fields, not by those of
/// items 10 and 11, whose paths share its prefix as text (`items[1` …).
#[test]
fn list_items_beyond_ten_keep_their_own_locations() {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..12 {
        let spec = if i == 1 {
            "{host: h1, subsets: [{name: v1, labelz: {}}]}".to_owned()
        } else {
            format!("{{host: h{i}}}")
        };
        text.push_str(&format!(
            "- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  \
             metadata: {{name: dr{i}}}\n  spec: {spec}\n"
        ));
    }
    let loaded = load(&text);
    assert_eq!(loaded.documents().len(), 11);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "spec.subsets[0].labelz");
    // Item i starts on line 4 + 4i; its spec is its fourth line.
    assert_eq!(err.line(), Some(4 + 4 + 3), "{err}");
    // Item 1 failed, so item 11 is the eleventh document.
    let eleventh = &loaded.documents()[10];
    assert_eq!(eleventh.source.item, Some(11));
    assert_eq!(eleventh.source.location.line, 4 + 4 * 11);
    assert_eq!(
        eleventh.source_map.value("spec.host").map(|l| l.line),
        Some(4 + 4 * 11 + 3)
    );
}

#[test]
fn json_documents_load_and_errors_are_located() {
    let text = r#"{
  "apiVersion": "networking.istio.io/v1",
  "kind": "ServiceEntry",
  "metadata": {"name": "external"},
  "spec": {
    "hosts": ["api.example.com"],
    "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
    "resolution": "DNZ"
  }
}"#;
    let loaded = Loader::new().read_str("se.json", text);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "spec.resolution");
    assert_eq!((err.line(), err.column()), (Some(8), Some(19)));
    let fixed = Loader::new()
        .load_str("se.json", &text.replace("DNZ", "DNS"))
        .unwrap();
    assert_eq!(fixed.documents()[0].object.kind(), Kind::ServiceEntry);
}

#[test]
fn protobuf_field_names_are_accepted() {
    let text = "\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  export_to: ['.']
  tls:
  - match:
    - sni_hosts: [r.example.com]
    route:
    - destination: {host: r}
";
    let loaded = Loader::new().load_str("r.yaml", text).unwrap();
    let Object::VirtualService(vs) = &loaded.documents()[0].object else {
        panic!()
    };
    assert_eq!(vs.spec.export_to, ["."]);
    assert_eq!(vs.spec.tls[0].r#match[0].sni_hosts, ["r.example.com"]);
}

#[test]
fn null_fields_are_unset_as_protobuf_json_reads_them() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: r
  annotations:
spec:
  host: r
  trafficPolicy: ~
";
    let loaded = Loader::new().load_str("r.yaml", text).unwrap();
    let Object::DestinationRule(dr) = &loaded.documents()[0].object else {
        panic!()
    };
    assert!(dr.metadata.annotations.is_empty());
    assert!(dr.spec.traffic_policy.is_none());
}

#[test]
fn a_flow_scalar_ending_in_a_colon_reads_as_go_yaml_reads_it() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: r}
spec:
  hosts: [r.example.com]
  addresses: [1.2.3.4, 2001:db8::]
";
    let loaded = Loader::new().load_str("r.yaml", text).unwrap();
    let Object::ServiceEntry(se) = &loaded.documents()[0].object else {
        panic!()
    };
    assert_eq!(se.spec.addresses, ["1.2.3.4", "2001:db8::"]);
}

#[test]
fn written_yaml_and_json_load_back_equal_and_omit_unset_fields() {
    let loaded = Loader::new().load_str("gw.yaml", GATEWAY).unwrap();
    let object = &loaded.documents()[0].object;
    let yaml = to_yaml(object).unwrap();
    assert!(!yaml.contains("bind"), "unset fields are omitted:\n{yaml}");
    let json = to_json(object).unwrap();
    for text in [yaml, json] {
        let again = Loader::new().load_str("again", &text).unwrap();
        assert_eq!(&again.documents()[0].object, object);
    }
    assert_eq!(object.api_version(), ApiVersion::NetworkingV1);
}

#[test]
fn limits_refuse_hostile_input_cheaply() {
    let mut options = LoadOptions::default();
    options.max_bytes = 64;
    let err = Loader::with_options(options.clone())
        .load_str("big.yaml", GATEWAY)
        .unwrap_err();
    assert_eq!(err.errors()[0].kind(), LoadErrorKind::Limit);

    options = LoadOptions::default();
    options.max_documents = 2;
    let three = format!("{GATEWAY}---\n{GATEWAY}---\n{GATEWAY}");
    let loaded = Loader::with_options(options).read_str("many.yaml", &three);
    assert!(
        loaded
            .errors()
            .iter()
            .any(|e| e.kind() == LoadErrorKind::Limit),
        "{:?}",
        loaded.errors()
    );

    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let loaded = Loader::new().read_str("deep.yaml", &deep);
    assert!(!loaded.errors().is_empty());
}

#[test]
fn string_match_keeps_the_empty_branch_meaning_presence() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - match:
    - headers: {x-user: {}}
    route:
    - destination: {host: r}
";
    let loaded = Loader::new().load_str("r.yaml", text).unwrap();
    let Object::VirtualService(vs) = &loaded.documents()[0].object else {
        panic!()
    };
    assert_eq!(
        vs.spec.http[0].r#match[0].headers.get("x-user"),
        Some(&StringMatch::Unset)
    );
}

#[test]
fn numbers_written_as_strings_load_as_protobuf_json_allows() {
    let loaded = Loader::new()
        .load_str(
            "gw.yaml",
            &GATEWAY.replace("number: 443", "number: \"443\""),
        )
        .unwrap();
    let Object::Gateway(gw) = &loaded.documents()[0].object else {
        panic!()
    };
    assert_eq!(
        gw.spec.servers[0].port.as_ref().map(|p| p.number),
        Some(443)
    );
    let bad = Loader::new().read_str("gw.yaml", &GATEWAY.replace("number: 443", "number: \"x\""));
    assert_eq!(bad.errors()[0].path(), "spec.servers[0].port.number");
}

#[test]
fn a_null_map_value_is_an_error_not_an_absent_entry() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - match:
    - headers: {x-user: null}
    route:
    - destination: {host: r}
";
    let loaded = Loader::new().read_str("r.yaml", text);
    let [err] = loaded.errors() else {
        panic!("{:?}", loaded.errors())
    };
    assert_eq!(err.path(), "spec.http[0].match[0].headers.x-user");
    assert_eq!(err.line(), Some(8));
}

#[test]
fn documents_without_a_namespace_land_in_the_default_namespace() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec: {hosts: [edition.cnn.com]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cnn, namespace: null}
spec: {host: edition.cnn.com}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec: {}
---
apiVersion: v1
kind: Namespace
metadata: {name: egress}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: reviews}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
";
    let namespaces = |loader: Loader| {
        let loaded = loader.load_str("ns.yaml", text).unwrap();
        let typed: Vec<String> = loaded
            .documents()
            .iter()
            .map(|d| d.object.metadata().namespace.clone())
            .collect();
        let skipped: Vec<Option<String>> = loaded
            .skipped()
            .iter()
            .map(|s| {
                s.value["metadata"]
                    .get("namespace")
                    .and_then(|n| n.as_str())
                    .map(str::to_owned)
            })
            .collect();
        (typed, skipped)
    };
    let (typed, skipped) = namespaces(Loader::new());
    // ServiceEntry, DestinationRule (null), Gateway (as written), Namespace (cluster-scoped), Service (List item).
    assert_eq!(typed, ["default", "default", "istio-system", "", "default"]);
    // Sidecar (namespaced), Node (cluster-scoped).
    assert_eq!(skipped, [Some("default".to_owned()), None]);

    let (typed, _) = namespaces(Loader::new().with_default_namespace("egress"));
    assert_eq!(typed, ["egress", "egress", "istio-system", "", "egress"]);
    let (typed, skipped) = namespaces(Loader::new().with_default_namespace(""));
    assert_eq!(typed, ["", "", "istio-system", "", ""]);
    assert_eq!(skipped, [None, None]);
    assert_eq!(LoadOptions::default().default_namespace, "default");
}

#[test]
fn document_limit_counts_exactly_and_names_its_option() {
    let doc = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: a\nspec:\n  hosts: [a.example.com]\n";
    let many = |n: usize| vec![doc; n].join("---\n");
    let mut options = LoadOptions::default();
    options.max_documents = 3;
    let loader = Loader::with_options(options);
    assert!(loader.read_str("three.yaml", &many(3)).errors().is_empty());
    let loaded = loader.read_str("four.yaml", &many(4));
    assert_eq!(loaded.errors().len(), 1, "{:?}", loaded.errors());
    assert_eq!(loaded.errors()[0].kind(), LoadErrorKind::Limit);
    assert!(
        loaded.errors()[0]
            .to_string()
            .contains("more than 3 documents in one file; raise the limit with --max-documents"),
        "{}",
        loaded.errors()[0]
    );
    // A List counts with its items.
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: networking.istio.io/v1, kind: ServiceEntry, metadata: {name: a}, spec: {hosts: [a.example.com]}}\n- {apiVersion: networking.istio.io/v1, kind: ServiceEntry, metadata: {name: b}, spec: {hosts: [b.example.com]}}\n";
    assert!(loader.read_str("list.yaml", list).errors().is_empty());
    let loaded = loader.read_str("list.yaml", &format!("{list}---\n{doc}"));
    assert_eq!(loaded.errors()[0].kind(), LoadErrorKind::Limit);
    let raised = Loader::new().with_max_documents(4);
    assert!(raised.read_str("four.yaml", &many(4)).errors().is_empty());
}

/// A directory of files loads the same, in path order, whether its files are parsed one after
/// another or on several threads; a file that fails keeps its place among the errors.
#[test]
fn a_directory_loads_in_path_order_on_any_number_of_threads() {
    let dir =
        std::env::temp_dir().join(format!("portcullis-loader-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for i in 0..12 {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata: {{name: se-{i:02}, namespace: ns}}\nspec: {{hosts: [h{i}.example.com]}}\n"
        );
        let place = if i % 3 == 0 {
            dir.join("nested")
        } else {
            dir.clone()
        };
        std::fs::write(place.join(format!("se-{i:02}.yaml")), text).unwrap();
    }
    std::fs::write(
        dir.join("se-05b.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nspec: {hostz: []}\n",
    )
    .unwrap();
    let names = |loaded: &portcullis_model::Loaded| -> Vec<String> {
        loaded
            .documents()
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    d.source.file.rsplit('/').next().unwrap_or(""),
                    d.object.metadata().name
                )
            })
            .collect()
    };
    let serial = Loader::new().with_threads(1).read_path(&dir);
    assert_eq!(serial.documents().len(), 12);
    assert_eq!(serial.errors().len(), 1);
    assert!(
        serial.errors()[0].to_string().contains("se-05b.yaml"),
        "{}",
        serial.errors()[0]
    );
    // `read_dir` order is the file system's; the loader's is the paths' (nested/ before se-*).
    let expected: Vec<String> = [0, 3, 6, 9, 1, 2, 4, 5, 7, 8, 10, 11]
        .iter()
        .map(|i| format!("se-{i:02}.yaml:se-{i:02}"))
        .collect();
    assert_eq!(names(&serial), expected);
    for threads in [0, 2, 3, 64] {
        let parallel = Loader::new().with_threads(threads).read_path(&dir);
        assert_eq!(names(&parallel), expected, "threads = {threads}");
        assert_eq!(
            parallel
                .errors()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            serial
                .errors()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            "threads = {threads}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cache parses only files whose bytes changed, forgets files that are gone, and starts
/// over when the loader's options change; what it returns is what an uncached load returns.
#[test]
fn a_cached_load_parses_only_changed_files_and_equals_an_uncached_one() {
    let dir = std::env::temp_dir().join(format!("portcullis-loader-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let se = |name: &str, host: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata: {{name: {name}}}\nspec: {{hosts: [{host}]}}\n"
        )
    };
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(format!("{name}.yaml")), se(name, "x.example")).unwrap();
    }
    let loader = Loader::new();
    let mut cache = portcullis_model::LoadCache::default();
    assert_eq!(
        loader.read_path_cached(&dir, &mut cache),
        loader.read_path(&dir)
    );
    assert_eq!((cache.parsed(), cache.len()), (3, 3));
    assert_eq!(
        loader.read_path_cached(&dir, &mut cache),
        loader.read_path(&dir)
    );
    assert_eq!(cache.parsed(), 0);
    // Same length, different bytes: parsed again.
    std::fs::write(dir.join("b.yaml"), se("b", "y.example")).unwrap();
    std::fs::remove_file(dir.join("c.yaml")).unwrap();
    std::fs::write(dir.join("d.yaml"), "kind: [").unwrap();
    let cached = loader.read_path_cached(&dir, &mut cache);
    assert_eq!(cached, loader.read_path(&dir));
    assert_eq!((cache.parsed(), cache.len()), (2, 3));
    assert_eq!(cached.documents().len(), 2);
    assert_eq!(cached.errors().len(), 1);
    // Another thread count parses the same: the cache stands.
    loader
        .clone()
        .with_threads(1)
        .read_path_cached(&dir, &mut cache);
    assert_eq!(cache.parsed(), 0);
    assert!(format!("{cache:?}").len() < 100, "{cache:?}");
    // Other options: nothing cached is used.
    let other = Loader::new().with_default_namespace("edge");
    let cached = other.read_path_cached(&dir, &mut cache);
    assert_eq!(cache.parsed(), 3);
    assert_eq!(cached.documents()[0].object.metadata().namespace, "edge");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A changed file is parsed again only where its documents' text changed; the documents
/// kept from the last load are moved to their new lines and indices, so the result is still
/// exactly an uncached load's.
#[test]
fn a_changed_file_parses_only_its_changed_documents() {
    let dir = std::env::temp_dir().join(format!("portcullis-loader-parts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let se = |name: &str, host: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata:\n  name: {name}\nspec:\n  hosts: [{host}]\n"
        )
    };
    let file = dir.join("all.yaml");
    let write = |docs: &[String]| std::fs::write(&file, docs.concat()).unwrap();
    let mut docs: Vec<String> = (0..5)
        .map(|i| se(&format!("se-{i}"), "x.example"))
        .collect();
    write(&docs);
    let loader = Loader::new();
    let mut cache = portcullis_model::LoadCache::default();
    assert_eq!(
        loader.read_path_cached(&dir, &mut cache),
        loader.read_path(&dir)
    );
    assert_eq!((cache.parsed(), cache.kept_documents()), (1, 0));

    let mut check = |docs: &[String], kept: usize| {
        write(docs);
        let cached = loader.read_path_cached(&dir, &mut cache);
        let fresh = loader.read_path(&dir);
        assert_eq!(cached, fresh);
        assert_eq!(cache.kept_documents(), kept);
        // Every document is where a fresh read puts it, line and index.
        for (c, f) in cached.documents().iter().zip(fresh.documents()) {
            assert_eq!(c.source, f.source);
            assert_eq!(
                c.source_map.key("spec.hosts"),
                f.source_map.key("spec.hosts")
            );
        }
    };
    // One document changed, same number of lines.
    docs[2] = se("se-2", "y.example");
    check(&docs, 4);
    // A document grows by two lines: those after it move down.
    docs[1] = docs[1].replace("spec:\n", "# one\n# two\nspec:\n");
    check(&docs, 4);
    // A document removed: those after it move up, and their index goes down.
    docs.remove(0);
    check(&docs, 4);
    // Comments before the first marker, and a document inserted at the top.
    docs.insert(0, format!("# header\n{}", se("new", "z.example")));
    check(&docs, 4);
    // The same text twice: both places get the document, each at its own line.
    docs.push(docs[3].clone());
    check(&docs, 6);
    // A document with an error is never kept, but it does not stop the others being kept.
    docs[1] = docs[1].replace("hosts:", "hostz:");
    check(&docs, 5);
    docs[4] = se("se-4", "w.example");
    check(&docs, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

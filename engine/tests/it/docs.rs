//! Every JSON example in docs/scenario-format.md and docs/autoscaling.md is a valid scenario file.

use std::path::Path;

use symbiote::scenario::parse_in;

#[test]
fn every_example_in_the_format_docs_validates() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let text = std::fs::read_to_string(docs.join("scenario-format.md")).unwrap();
    let blocks: Vec<&str> = text.split("```json").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(blocks.len() >= 8, "found {} examples", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        if let Err(problems) = parse_in(block, &format!("docs example {i}"), &docs) {
            panic!(
                "example {i} is invalid:\n{}",
                problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
            );
        }
    }
}

#[test]
fn the_autoscaling_docs_example_validates() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let text = std::fs::read_to_string(docs.join("autoscaling.md")).unwrap();
    let blocks: Vec<&str> = text.split("```json").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1);
    let scenario = parse_in(blocks[0], "docs/autoscaling.md", &docs)
        .unwrap_or_else(|p| panic!("{}", p.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")));
    let a = scenario.cases[0].autoscaling.expect("the example autoscales");
    assert_eq!((a.min_replicas, a.max_replicas, a.initial_replicas), (2, 8, 2));
}

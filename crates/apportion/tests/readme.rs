//! The README's library example is the crate's tutorial, byte for byte: the crate docs
//! include `examples/tutorial.rs` (so `cargo test` compiles and runs it as a doctest), and
//! this test holds the README's copy to it, so the example a reader copies is one that
//! works.

#[test]
fn the_readme_shows_the_tutorial_the_doctest_runs() {
    let readme = include_str!("../../../README.md");
    let tutorial = include_str!("../examples/tutorial.rs");
    assert!(
        readme.contains(&format!("```rust\n{tutorial}```\n")),
        "README.md's library example differs from crates/apportion/examples/tutorial.rs: \
         put the file's text in the README's ```rust block"
    );
}

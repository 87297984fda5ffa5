//! Every misuse of the macros is a compile error at the user's token,
//! pinned by a `.stderr` snapshot beside each case in the workspace's flat
//! `tests/ui/` folder; valid programs the macros once misjudged compile and
//! run, from `tests/ui-pass/`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("../tests/ui/*.rs");
    t.pass("../tests/ui-pass/*.rs");
}

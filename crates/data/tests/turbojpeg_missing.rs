//! Without libjpeg-turbo, decoding a JPEG is an error that names the file and says how to get
//! the library; everything else keeps working. (Its own test binary: the library is loaded
//! once per process.)

use std::path::Path;

#[test]
fn a_missing_libjpeg_turbo_is_a_clear_error() {
    // SAFETY: the only test of this binary, run before any thread reads the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            convnets_data::turbojpeg::LIBRARY_VAR,
            "/nonexistent/libturbojpeg.so.0",
        );
    }
    assert!(!convnets_data::turbojpeg::available());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    let jpeg = std::fs::read_dir(&dir)
        .expect("photo fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::read(p).is_ok_and(|b| b.starts_with(&[0xFF, 0xD8, 0xFF])))
        .expect("a JPEG fixture");
    let bytes = std::fs::read(&jpeg).expect("readable");
    let name = jpeg.display().to_string();
    let err = convnets_data::decode::decode(&bytes, &name)
        .expect_err("no decoder")
        .to_string();
    assert!(err.contains(&name), "{err}");
    assert!(
        err.contains("apt-get install libturbojpeg0") && err.contains("CONVNETS_TURBOJPEG"),
        "{err}"
    );
}

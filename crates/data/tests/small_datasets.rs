//! MNIST, Fashion-MNIST and CIFAR: the real files where they are here, and every kind of
//! broken file each loader must name.

mod common;

use std::path::Path;

use anyhow::{Context, Result};
use common::{fixtures, scratch, write};
use convnets_data::cifar::{Cifar, IMAGE_BYTES};
use convnets_data::hub::{HubCache, dataset_files};
use convnets_data::mnist::{Dataset, FASHION_MNIST_DEBIAN_DIR, FashionMnist, Mnist, read_idx};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn bundled_mnist_is_the_original() -> Result<()> {
    let mnist = Mnist::bundled()?;
    assert_eq!((mnist.train.count, mnist.test.count), (60_000, 10_000));
    assert_eq!((mnist.train.rows, mnist.train.cols), (28, 28));
    // Known first labels of the two splits: 5 and 7.
    assert_eq!((mnist.train.labels[0], mnist.test.labels[0]), (5, 7));
    // The raw IDX files hash to the values recorded in assets/README.md: rebuild them from
    // the parsed data (header + bytes) and hash.
    let idx = |magic: u8, dims: &[u32], data: &[u8]| hex(&idx_bytes(magic, dims, data));
    assert_eq!(
        idx(3, &[60_000, 28, 28], &mnist.train.images),
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    );
    assert_eq!(
        idx(1, &[60_000], &mnist.train.labels),
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    );
    assert_eq!(
        idx(3, &[10_000, 28, 28], &mnist.test.images),
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    );
    assert_eq!(
        idx(1, &[10_000], &mnist.test.labels),
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    );
    let t = mnist.test.images_tensor(&candle_core::Device::Cpu)?;
    assert_eq!(t.dims(), &[10_000, 1, 28, 28]);
    let max = t.max_all()?.to_scalar::<f32>()?;
    assert_eq!(max, 1.0);
    Ok(())
}

#[test]
fn fashion_mnist_from_debian_when_installed() -> Result<()> {
    let dir = std::path::Path::new(FASHION_MNIST_DEBIAN_DIR);
    if !dir.is_dir() {
        eprintln!(
            "skipped: {FASHION_MNIST_DEBIAN_DIR} absent (apt-get install dataset-fashion-mnist)"
        );
        return Ok(());
    }
    let fm = FashionMnist::resolve(None)?;
    assert_eq!((fm.train.count, fm.test.count), (60_000, 10_000));
    // The first training image is an ankle boot (9), the first test image too.
    assert_eq!((fm.train.labels[0], fm.test.labels[0]), (9, 9));
    Ok(())
}

#[test]
fn fashion_mnist_from_a_hub_cache() -> Result<()> {
    // The cache layout huggingface_hub writes: refs/main names the snapshot.
    let cache = scratch("hub-cache");
    let repo = cache.join("datasets--zalando-datasets--fashion_mnist");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    write(&repo.join("refs/main"), commit.as_bytes());
    for split in ["train", "test"] {
        let name = format!("{split}-00000-of-00001.parquet");
        let bytes = std::fs::read(fixtures().join("hub/fashion_mnist").join(&name))?;
        write(
            &repo
                .join("snapshots")
                .join(commit)
                .join("fashion_mnist")
                .join(&name),
            &bytes,
        );
    }
    let fm = FashionMnist::from_hub(&HubCache::new(&cache))?;
    assert_eq!((fm.train.count, fm.test.count), (5, 3));
    assert_eq!((fm.train.rows, fm.train.cols), (28, 28));
    // The same pixels and labels as the IDX files they were taken from.
    let dir = std::path::Path::new(FASHION_MNIST_DEBIAN_DIR);
    if dir.is_dir() {
        let idx = Dataset::from_dir(dir)?;
        assert_eq!(fm.train.images, idx.train.images[..5 * 784]);
        assert_eq!(fm.train.labels, idx.train.labels[..5]);
        assert_eq!(fm.test.labels, idx.test.labels[..3]);
    }
    // Not cached: an error naming the repository and the file.
    let empty = scratch("hub-empty");
    let e = dataset_files(
        &unreachable_hub(&empty),
        "zalando-datasets/fashion_mnist",
        &["x.parquet"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("zalando-datasets/fashion_mnist/x.parquet"),
        "{e}"
    );
    Ok(())
}

/// A cache whose downloads (with the `hub` feature, which the workspace's build enables)
/// go to a closed local port and fail at once, instead of to huggingface.co.
fn unreachable_hub(cache: &Path) -> HubCache {
    HubCache::new(cache).with_endpoint("http://127.0.0.1:9")
}

/// Files the way huggingface_hub caches them: `refs/main` names the snapshot.
fn cache_dataset(cache: &Path, repo: &str, files: &[(&str, &Path)]) -> Result<()> {
    let repo = cache.join(format!("datasets--{}", repo.replace('/', "--")));
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    write(&repo.join("refs/main"), commit.as_bytes());
    for (name, source) in files {
        write(
            &repo.join("snapshots").join(commit).join(name),
            &std::fs::read(source)?,
        );
    }
    Ok(())
}

#[test]
fn cifar_from_a_hub_cache_or_an_error_saying_what_to_fetch() -> Result<()> {
    let cache = scratch("hub-cache-cifar");
    for cifar in [Cifar::Ten, Cifar::Hundred] {
        let (repo, file) = cifar.hub_file(false);
        let local = fixtures().join("hub").join(match cifar {
            Cifar::Ten => "cifar10",
            Cifar::Hundred => "cifar100",
        });
        cache_dataset(&cache, repo, &[(file, &local.join(file))])?;
        let cached = cifar.from_hub(&unreachable_hub(&cache), false)?;
        let direct = cifar.from_parquet_dir(&local, false)?;
        assert_eq!(cached.len(), 4);
        assert_eq!(
            (cached.images, cached.labels, cached.coarse_labels),
            (direct.images, direct.labels, direct.coarse_labels)
        );
        // The explicit path: a snapshot folder, or the file itself.
        assert_eq!(cifar.resolve(Some(&local), false)?.len(), 4);
        assert_eq!(cifar.resolve(Some(&local.join(file)), false)?.len(), 4);

        // The training split is not cached: what is missing, and where it goes.
        let (repo, file) = cifar.hub_file(true);
        let e = cifar
            .from_hub(&unreachable_hub(&cache), true)
            .unwrap_err()
            .to_string();
        for needle in [
            &format!("{} training split", cifar.name()),
            &format!("{repo}/{file}"),
            &format!("huggingface-cli download --repo-type dataset {repo} {file}"),
            &cache.display().to_string(),
            "binary distribution",
        ] {
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
    }
    // An explicit folder without the hub's file is read as the binary distribution.
    let e = Cifar::Ten
        .resolve(Some(&scratch("cifar-empty")), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no test_batch.bin"), "{e}");
    Ok(())
}

#[test]
fn cifar_resolve_reads_a_path_as_what_it_is() -> Result<()> {
    let dir = scratch("cifar-resolve");
    let thumbs = std::fs::read(fixtures().join("hub/cifar_thumbnails_chw.u8"))?;
    let mut batch = Vec::new();
    for (label, img) in [3, 1, 4, 1]
        .into_iter()
        .zip(thumbs.chunks_exact(IMAGE_BYTES))
    {
        batch.push(label);
        batch.extend_from_slice(img);
    }
    // A binary batch file, whatever it is called, and some of its records.
    write(&dir.join("batch/test_batch.bin"), &batch);
    write(&dir.join("batch/mine.dat"), &batch[..2 * (1 + IMAGE_BYTES)]);
    let whole = Cifar::Ten.resolve(Some(&dir.join("batch/test_batch.bin")), false)?;
    assert_eq!(
        (whole.labels.as_slice(), &whole.images),
        (&[3, 1, 4, 1][..], &thumbs)
    );
    let two = Cifar::Ten.resolve(Some(&dir.join("batch/mine.dat")), false)?;
    assert_eq!(two.labels, [3, 1]);

    // The hub's parquet: the file, its snapshot folder, or the file's own folder.
    let snapshot = fixtures().join("hub/cifar10");
    let file = snapshot.join(Cifar::Ten.hub_file(false).1);
    for path in [
        &file,
        &snapshot,
        &file.parent().context("folder")?.to_path_buf(),
    ] {
        let split = Cifar::Ten.resolve(Some(path), false)?;
        assert_eq!(
            (&split.labels, &split.images),
            (&whole.labels, &whole.images),
            "{}",
            path.display()
        );
    }
    // A .parquet file is read as parquet (a binary batch would be "not a whole number of
    // records").
    let e = Cifar::Ten
        .resolve(
            Some(&fixtures().join("hub/broken/cifar10_64x64.parquet")),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("not 32x32"), "{e}");

    // Any other folder is the binary distribution, which names what it lacks.
    let e = Cifar::Ten
        .resolve(Some(&dir.join("batch")), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no data_batch_1.bin"), "{e}");
    let missing = dir.join("nowhere");
    let e = Cifar::Ten
        .resolve(Some(&missing), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("no such file or folder"),
        "{e}"
    );

    // Nothing given: the hub cache, which offline never downloads.
    let cache = scratch("cifar-resolve-cache");
    let (repo, hub_file) = Cifar::Ten.hub_file(false);
    cache_dataset(&cache, repo, &[(hub_file, &file)])?;
    let cached = Cifar::Ten.resolve_in(None, false, &unreachable_hub(&cache))?;
    assert_eq!(cached.labels, whole.labels);
    let e = Cifar::Ten
        .resolve_in(None, true, &unreachable_hub(&cache).with_offline(true))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("downloads are off") && !e.contains("download failed"),
        "{e}"
    );
    Ok(())
}

#[test]
fn an_evenly_spaced_subset_keeps_images_and_labels_together() -> Result<()> {
    let mnist = Mnist::bundled()?.test;
    let three = mnist.evenly_spaced(3);
    assert_eq!((three.count, three.rows, three.cols), (3, 28, 28));
    for (k, i) in [0, 3333, 6666].into_iter().enumerate() {
        assert_eq!(three.labels[k], mnist.labels[i]);
        assert_eq!(
            three.images[k * 784..(k + 1) * 784],
            mnist.images[i * 784..(i + 1) * 784]
        );
    }
    assert_eq!(mnist.evenly_spaced(20_000).count, 10_000);

    let cifar = Cifar::Hundred.from_parquet_dir(&fixtures().join("hub/cifar100"), false)?;
    let two = cifar.evenly_spaced(2);
    assert_eq!(two.labels, [cifar.labels[0], cifar.labels[2]]);
    let coarse = cifar.coarse_labels.as_deref().context("coarse labels")?;
    assert_eq!(
        two.coarse_labels.as_deref(),
        Some(&[coarse[0], coarse[2]][..])
    );
    assert_eq!(
        two.images[IMAGE_BYTES..],
        cifar.images[2 * IMAGE_BYTES..3 * IMAGE_BYTES]
    );
    Ok(())
}

fn idx_bytes(magic: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, magic];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // A stored (uncompressed) deflate stream inside gzip framing, enough for read_idx.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for (i, chunk) in bytes.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= bytes.len();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let crc = crc32(bytes);
    out.extend(crc.to_le_bytes());
    out.extend((bytes.len() as u32).to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn broken_idx_files_are_named() -> Result<()> {
    let dir = scratch("idx");
    let images = idx_bytes(3, &[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7]);
    let labels = idx_bytes(1, &[2], &[3, 9]);
    // Gzipped and raw files read the same.
    write(&dir.join("a.gz"), &gzip(&images));
    write(&dir.join("a"), &images);
    assert_eq!(
        read_idx(&dir.join("a.gz"))?.data,
        read_idx(&dir.join("a"))?.data
    );

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            images[..images.len() - 1].to_vec(),
            "(truncated)",
        ),
        (
            "magic",
            b"\x89PNG\r\n\x1a\n1234".to_vec(),
            "bad magic number",
        ),
        (
            "gz-truncated",
            gzip(&images)[..20].to_vec(),
            "bad gzip stream",
        ),
        (
            "float",
            {
                let mut v = images.clone();
                v[2] = 0x0d;
                v
            },
            "IDX type 0x0d",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        write(&path, &bytes);
        let e = read_idx(&path).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains(want),
            "{name}: {e}"
        );
    }

    // A full MNIST-style folder whose labels do not match its images.
    let bad = dir.join("mnist");
    write(&bad.join("train-images-idx3-ubyte"), &images);
    write(
        &bad.join("train-labels-idx1-ubyte"),
        &idx_bytes(1, &[3], &[1, 2, 3]),
    );
    write(&bad.join("t10k-images-idx3-ubyte"), &images);
    write(&bad.join("t10k-labels-idx1-ubyte"), &labels);
    let e = Dataset::from_dir(&bad).unwrap_err().to_string();
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("3 labels for the 2 images"),
        "{e}"
    );
    write(
        &bad.join("train-labels-idx1-ubyte"),
        &idx_bytes(1, &[2], &[1, 10]),
    );
    let e = Dataset::from_dir(&bad).unwrap_err().to_string();
    assert!(e.contains("label 10 at index 1 is not below 10"), "{e}");
    write(&bad.join("train-labels-idx1-ubyte"), &labels);
    Dataset::from_dir(&bad)?;
    std::fs::remove_file(bad.join("t10k-images-idx3-ubyte"))?;
    let e = Dataset::from_dir(&bad).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
    Ok(())
}

#[test]
fn cifar_binary_batches() -> Result<()> {
    let dir = scratch("cifar-bin");
    let thumbs = std::fs::read(fixtures().join("hub/cifar_thumbnails_chw.u8"))?;
    // A CIFAR-10 record is label + 3072 planar bytes; CIFAR-100 coarse + fine + 3072.
    let mut ten = Vec::new();
    let mut hundred = Vec::new();
    for (i, img) in thumbs.chunks_exact(IMAGE_BYTES).enumerate() {
        ten.push([3, 1, 4, 1][i]);
        ten.extend_from_slice(img);
        hundred.extend([[17, 13, 0, 18][i], [59, 26, 53, 58][i]]);
        hundred.extend_from_slice(img);
    }
    write(&dir.join("test_batch.bin"), &ten);
    write(&dir.join("test.bin"), &hundred);
    let a = Cifar::Ten.read_binary(&dir.join("test_batch.bin"), None)?;
    assert_eq!(a.labels, [3, 1, 4, 1]);
    assert_eq!(a.images, thumbs);
    let b = Cifar::Hundred.read_binary(&dir.join("test.bin"), None)?;
    assert_eq!(
        (b.labels.as_slice(), b.coarse_labels.as_deref()),
        (&[59, 26, 53, 58][..], Some(&[17, 13, 0, 18][..]))
    );

    // The binary files and the hub's parquet files hold the same data.
    let pq10 = Cifar::Ten.from_parquet_dir(&fixtures().join("hub/cifar10"), false)?;
    assert_eq!(
        (pq10.images.as_slice(), pq10.labels.as_slice()),
        (a.images.as_slice(), a.labels.as_slice())
    );
    let pq100 = Cifar::Hundred.from_parquet_dir(&fixtures().join("hub/cifar100"), false)?;
    assert_eq!(pq100.coarse_labels, b.coarse_labels);
    assert_eq!(
        pq100.images_tensor(&candle_core::Device::Cpu)?.dims(),
        &[4, 3, 32, 32]
    );

    // The distribution's folder expects 10,000 records per file.
    let e = Cifar::Ten
        .from_binary_dir(&dir, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("4 records, expected 10000"),
        "{e}"
    );
    let e = Cifar::Ten
        .from_binary_dir(&dir, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no data_batch_1.bin"), "{e}");
    // Truncated, and a label out of range.
    write(&dir.join("short.bin"), &ten[..ten.len() - 5]);
    let e = Cifar::Ten
        .read_binary(&dir.join("short.bin"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("short.bin") && e.contains("not a whole number of 3073-byte records"),
        "{e}"
    );
    let mut bad = ten.clone();
    bad[3073] = 10;
    write(&dir.join("label.bin"), &bad);
    let e = Cifar::Ten
        .read_binary(&dir.join("label.bin"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("label.bin") && e.contains("row 1: label 10 not in 0..10"),
        "{e}"
    );
    // A parquet file with CIFAR-100's columns is not CIFAR-10.
    let e = Cifar::Ten
        .read_parquet(&fixtures().join("hub/cifar100/cifar100/test-00000-of-00001.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `label`"), "{e}");
    // Not a parquet file at all.
    let e = Cifar::Ten
        .read_parquet(&dir.join("test_batch.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("not a readable parquet file"),
        "{e}"
    );
    Ok(())
}

/// A file of `fixtures/hub/broken` (written by `hub_fixtures.py`): two rows, the second bad.
fn broken(name: &str) -> std::path::PathBuf {
    fixtures().join("hub/broken").join(name)
}

#[test]
fn fashion_mnist_parquet_files_with_a_bad_file_or_row_are_named() -> Result<()> {
    let dir = scratch("fashion-parquet");
    let good = std::fs::read(fixtures().join("hub/fashion_mnist/train-00000-of-00001.parquet"))?;
    let train = dir.join("fashion_mnist/train-00000-of-00001.parquet");
    write(
        &dir.join("fashion_mnist/test-00000-of-00001.parquet"),
        &std::fs::read(fixtures().join("hub/fashion_mnist/test-00000-of-00001.parquet"))?,
    );
    let cifar =
        std::fs::read(fixtures().join("hub/cifar10/plain_text/test-00000-of-00001.parquet"))?;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "not a readable parquet file",
        ),
        ("CIFAR's columns", cifar, "no column `image`"),
        (
            "label 10",
            std::fs::read(broken("fashion_mnist_label10.parquet"))?,
            "row 1: label 10 not in 0..10",
        ),
        (
            "32x32",
            std::fs::read(broken("fashion_mnist_32x32.parquet"))?,
            "row 1: image is 32x32, not 28x28",
        ),
    ];
    for (case, bytes, want) in cases {
        write(&train, &bytes);
        let e = FashionMnist::from_parquet_dir(&dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&train.display().to_string()) && e.contains(want),
            "{case}: {e}"
        );
    }
    write(&train, &good);
    assert_eq!(FashionMnist::from_parquet_dir(&dir)?.train.count, 5);
    Ok(())
}

#[test]
fn cifar_parquet_rows_that_are_not_cifar_are_named() -> Result<()> {
    for (file, want) in [
        ("cifar10_64x64.parquet", "row 1: image is 64x64, not 32x32"),
        ("cifar10_label10.parquet", "row 1: label 10 not in 0..10"),
        (
            "cifar10_not_an_image.parquet",
            " row 1: cannot decode image",
        ),
    ] {
        let path = broken(file);
        let e = Cifar::Ten.read_parquet(&path).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains(want),
            "{file}: {e}"
        );
    }
    Ok(())
}

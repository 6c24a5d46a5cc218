//! AlexNet and ZFNet at full size: torchvision's alexnet; the ONNX model zoo's bvlc_alexnet
//! and ZFNet-512 graphs run by onnxruntime, and the bvlc graph with the paper's LRN constants
//! (tests/parity/ref_alexnet.py); the paper's ZFNet against a PyTorch module written from
//! Fig. 3. The ONNX fixtures name their tensors as the zoo files name their initialisers, so
//! they load through the Caffe/Caffe2 key maps exactly as a converted zoo file would.

use std::collections::HashMap;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use convnets_alexnet::weights::{CAFFE_BVLC_ALEXNET, CAFFE2_ZFNET512, TORCHVISION};
use convnets_alexnet::{AlexNet, AlexNetConfig};
use convnets_core::checkpoint::Checkpoint;
use convnets_workspace_tests::{check_parity, fixture};

#[test]
fn alexnet_matches_torchvision() -> Result<()> {
    let config = AlexNetConfig::alexnet();
    check_parity("alexnet", &TORCHVISION, |vb| AlexNet::new(&config, vb))?;
    assert_eq!(fixture("alexnet")?.num_params(), 61_100_840);
    Ok(())
}

#[test]
fn bvlc_alexnet_matches_the_onnx_zoo_graph() -> Result<()> {
    let config = AlexNetConfig::bvlc_alexnet();
    check_parity("bvlc_alexnet", &CAFFE_BVLC_ALEXNET, |vb| {
        AlexNet::new(&config, vb)
    })?;
    assert_eq!(fixture("bvlc_alexnet")?.num_params(), 60_965_224);
    Ok(())
}

#[test]
fn alexnet_paper_matches_the_bvlc_graph_with_the_papers_lrn() -> Result<()> {
    // The bvlc graph with its LRN nodes set to the paper's constants (alpha 5e-4 in ONNX's
    // convention, bias 2): the same file layout, so the same key map.
    let config = AlexNetConfig::alexnet_paper();
    check_parity("alexnet_paper", &CAFFE_BVLC_ALEXNET, |vb| {
        AlexNet::new(&config, vb)
    })?;
    assert_eq!(fixture("alexnet_paper")?.num_params(), 60_965_224);
    assert_eq!(config.num_params()?, 60_965_224);
    Ok(())
}

#[test]
fn zfnet_matches_the_papers_figure_3_in_pytorch() -> Result<()> {
    let config = AlexNetConfig::zfnet();
    check_parity("zfnet", &TORCHVISION, |vb| AlexNet::new(&config, vb))?;
    assert_eq!(fixture("zfnet")?.num_params(), 62_357_608);
    Ok(())
}

#[test]
fn zfnet512_matches_the_onnx_zoo_graph() -> Result<()> {
    let config = AlexNetConfig::zfnet512();
    check_parity("zfnet512", &CAFFE2_ZFNET512, |vb| AlexNet::new(&config, vb))?;
    assert_eq!(fixture("zfnet512")?.num_params(), 87_250_536);
    Ok(())
}

#[test]
fn a_zoo_file_with_its_non_parameter_initialisers_loads() -> Result<()> {
    // The real ZFNet-512 file also holds the Reshape target and a Caffe2 queue blob; the key
    // map lets them go unused, and nothing else.
    let dev = Device::Cpu;
    let fx = fixture("zfnet512")?;
    let mut tensors: HashMap<String, Tensor> = fx
        .tensors
        .iter()
        .map(|s| {
            Ok((
                s.name.clone(),
                Tensor::zeros(s.shape.as_slice(), DType::F32, &dev)?,
            ))
        })
        .collect::<Result<_>>()?;
    tensors.insert("OC2_DUMMY_1".into(), Tensor::new(&[[1i64, 18432]], &dev)?);
    let queue = "gpu_0/imagenet1k_blobs_queue_e24a6638-b332-4e67-a127-91f5e17e2e11_0";
    tensors.insert(queue.into(), Tensor::zeros((1, 1), DType::F32, &dev)?);
    let config = AlexNetConfig::zfnet512();
    let ckpt = Checkpoint::from_tensors("zfnet512 as exported", tensors.clone());
    ckpt.load(&CAFFE2_ZFNET512, DType::F32, &dev, |vb| {
        AlexNet::new(&config, vb)
    })?;

    // A tensor the map does not account for is still refused.
    tensors.insert(
        "gpu_0/extra_w_0".into(),
        Tensor::zeros(1, DType::F32, &dev)?,
    );
    let ckpt = Checkpoint::from_tensors("zfnet512 with an extra blob", tensors);
    let err = ckpt
        .load(&CAFFE2_ZFNET512, DType::F32, &dev, |vb| {
            AlexNet::new(&config, vb)
        })
        .expect_err("an unexpected tensor must be reported");
    assert!(err.to_string().contains("gpu_0/extra_w_0"), "{err}");
    Ok(())
}

#[test]
fn the_paper_lrn_constants_are_not_caffes() -> Result<()> {
    // The bvlc fixture through the paper's configuration (k = 2 instead of Caffe's 1) must
    // fail: the parity check sees the normalisation constants.
    let config = AlexNetConfig::alexnet_paper();
    let err = check_parity("bvlc_alexnet", &CAFFE_BVLC_ALEXNET, |vb| {
        AlexNet::new(&config, vb)
    })
    .expect_err("k = 2 must not reproduce a k = 1 graph");
    assert!(err.to_string().contains("bvlc_alexnet"), "{err}");

    // And the other way round: Caffe's constants do not reproduce the paper's graph.
    let config = AlexNetConfig::bvlc_alexnet();
    let err = check_parity("alexnet_paper", &CAFFE_BVLC_ALEXNET, |vb| {
        AlexNet::new(&config, vb)
    })
    .expect_err("k = 1 must not reproduce a k = 2 graph");
    assert!(err.to_string().contains("alexnet_paper"), "{err}");
    Ok(())
}

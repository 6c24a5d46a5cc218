//! A residual block's closing `relu(y + shortcut)` in training, as one operation.
//!
//! With candle's operations it is a sum and a ReLU forward, each a pass over the activation
//! on one thread (candle's element-wise pool is kept to one thread by
//! `runtime::configure_cpu_process`), and backward the ReLU's mask, a conversion and a
//! product. Here forward is one parallel pass, and backward one masked copy of the gradient
//! ([`super::conv_grad::ReluGrad`], PyTorch's rule: no gradient where the output is 0),
//! which both summands receive.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::f32_slice;

/// `relu(a + b)` for two f32 CPU tensors of one shape, with its backward pass.
pub(crate) fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dims() != b.dims() {
        candle_core::bail!("residual sum: {:?} + {:?}", a.dims(), b.dims())
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

struct AddRelu;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "convnets-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (
            f32_slice("residual sum", s1, l1, "branch")?,
            f32_slice("residual sum", s2, l2, "shortcut")?,
        );
        let mut out = super::alloc::zeroed(a.len());
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| {
                // `max(0)` as candle's and the inference epilogue's ReLU.
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    *o = (a + b).max(0.0);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = dy
            .contiguous()?
            .apply_op2_no_bwd(&y.contiguous()?, &super::conv_grad::ReluGrad)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Values and gradients of `sum(relu(a + b) · r)` equal candle's composition's.
    #[test]
    fn the_fused_sum_is_the_sum_then_the_relu() -> Result<()> {
        let dev = Device::Cpu;
        let values = super::super::conv::tests::values;
        let shape = (3, 5, 7, 9);
        let a = Var::from_vec(values(945, 1), shape, &dev)?;
        let b = Var::from_vec(values(945, 2), shape, &dev)?;
        let r = Tensor::from_vec(values(945, 3), shape, &dev)?;
        let run = |fused: bool| -> Result<Vec<Vec<f32>>> {
            let y = if fused {
                add_relu(a.as_tensor(), b.as_tensor())?
            } else {
                (a.as_tensor() + b.as_tensor())?.relu()?
            };
            let grads = (&y * &r)?.sum_all()?.backward()?;
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            let grad = |v: &Var| flat(grads.get(v).expect("a gradient"));
            Ok(vec![flat(&y)?, grad(&a)?, grad(&b)?])
        };
        let (fused, plain) = (run(true)?, run(false)?);
        assert_eq!(fused, plain);
        assert!(fused[0].contains(&0.0) && fused[0].iter().any(|&v| v > 0.0));
        Ok(())
    }
}

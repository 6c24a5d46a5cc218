//! Which architecture a checkpoint file fits, and how well.
//!
//! Every architecture's preset and every pretrained weights' inference network is compared
//! with the file through each key map of its family: the file's tensor names are renamed
//! as the key map says and matched, name and shape, against the tensors the model asks for.
//! A classifier trained for another number of classes is recognised (every mismatch is
//! the class dimension) and the comparison is redone with that number.

use std::collections::{BTreeMap, BTreeSet};

use convnets_core::checkpoint::{Checkpoint, KeyMap};
use convnets_core::spec::WeightSpec;

use crate::error::Result;
use crate::model::Model;
use crate::registry::{ARCHITECTURES, Architecture, architecture, weights};
use crate::structure::record;

/// How a checkpoint compares with one model under one key map.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The architecture.
    pub arch: &'static Architecture,
    /// The weights whose inference network was compared, when it was not the preset.
    pub weights: Option<&'static str>,
    /// The key map the file's names went through.
    pub key_map: &'static KeyMap,
    /// The number of classes compared with.
    pub num_classes: usize,
    /// Tensors the model asks for.
    pub expected: usize,
    /// Of those, found with the right shape (or a shape the key map may reshape).
    pub matched: usize,
    /// Model tensors the file lacks.
    pub missing: Vec<String>,
    /// Model tensors the file has in another shape: name, model's shape, file's shape.
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// File tensors the model does not use and the key map does not name as unused.
    pub unexpected: Vec<String>,
}

impl Fit {
    /// Whether the file loads into this model as it is.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.mis_shaped.is_empty() && self.unexpected.is_empty()
    }

    /// What the model is called: the weights id, or the architecture.
    pub fn name(&self) -> &'static str {
        self.weights.unwrap_or(self.arch.name)
    }
}

/// The candidate models for `checkpoint`, best first: exact fits, then by the share of the
/// model's tensors found and the fewest tensors left over.
pub fn fits(checkpoint: &Checkpoint) -> Result<Vec<Fit>> {
    let file: BTreeMap<String, Vec<usize>> = checkpoint
        .names()
        .into_iter()
        .filter_map(|n| checkpoint.info(&n).map(|(shape, _)| (n, shape)))
        .collect();
    let mut fits = Vec::new();
    for arch in ARCHITECTURES {
        // The model's tensors do not depend on the key map: record them once per class count.
        let shapes = Shapes::new(|classes| {
            record(|vb| Model::new(arch, classes, vb)).map(|(_, tensors)| tensors)
        });
        for &key_map in arch.config.key_maps() {
            let compare = |classes| Ok(compare(&file, key_map, &shapes.get(classes)?));
            fits.push(best(
                arch,
                None,
                key_map,
                arch.config.num_classes(),
                compare,
            )?);
        }
    }
    for spec in weights() {
        let arch = architecture(spec.arch)?;
        let compare = |classes| {
            let spec = WeightSpec {
                num_classes: classes,
                ..*spec
            };
            let (_, tensors) = record(|vb| Model::for_weights(&spec, vb))?;
            Ok(compare(&file, spec.key_map, &tensors))
        };
        fits.push(best(
            arch,
            Some(spec.id),
            spec.key_map,
            spec.num_classes,
            compare,
        )?);
    }
    let score = |f: &Fit| {
        (
            !f.is_exact(),
            // More of the model found first; fewer leftovers next.
            std::cmp::Reverse((f.matched * 1_000_000) / f.expected.max(1)),
            f.unexpected.len(),
            f.missing.len(),
        )
    };
    fits.sort_by_key(|f| score(f));
    Ok(fits)
}

/// A model's tensors by class count, recorded on first use.
struct Shapes<F> {
    record: F,
    cache: std::cell::RefCell<BTreeMap<usize, std::rc::Rc<crate::Shapes>>>,
}

impl<F: Fn(usize) -> Result<crate::Shapes>> Shapes<F> {
    fn new(record: F) -> Self {
        Self {
            record,
            cache: Default::default(),
        }
    }

    fn get(&self, classes: usize) -> Result<std::rc::Rc<crate::Shapes>> {
        if let Some(s) = self.cache.borrow().get(&classes) {
            return Ok(s.clone());
        }
        let s = std::rc::Rc::new((self.record)(classes)?);
        self.cache.borrow_mut().insert(classes, s.clone());
        Ok(s)
    }
}

type Comparison = (
    usize,
    usize,
    Vec<String>,
    Vec<(String, Vec<usize>, Vec<usize>)>,
    Vec<String>,
);

/// Compares with `classes` classes, and again with the file's number of classes when every
/// mismatch says the classifier was trained for another number.
fn best(
    arch: &'static Architecture,
    weights: Option<&'static str>,
    key_map: &'static KeyMap,
    classes: usize,
    compare: impl Fn(usize) -> Result<Comparison>,
) -> Result<Fit> {
    let mut num_classes = classes;
    let mut result = compare(classes)?;
    // The file's class count, if the class dimension is all that differs.
    let class_dims: Option<BTreeSet<usize>> = result
        .3
        .iter()
        .map(|(_, want, got)| {
            (want.first() == Some(&classes) && want.len() == got.len() && want[1..] == got[1..])
                .then(|| got[0])
        })
        .collect();
    if let Some(dims) = class_dims
        && let [k] = dims.into_iter().collect::<Vec<_>>()[..]
    {
        num_classes = k;
        result = compare(k)?;
    }
    let (expected, matched, missing, mis_shaped, unexpected) = result;
    Ok(Fit {
        arch,
        weights,
        key_map,
        num_classes,
        expected,
        matched,
        missing,
        mis_shaped,
        unexpected,
    })
}

fn compare(
    file: &BTreeMap<String, Vec<usize>>,
    key_map: &KeyMap,
    model: &[(String, Vec<usize>)],
) -> Comparison {
    // The file's tensors under the model's names.
    let renamed: BTreeMap<String, (&str, &[usize])> = file
        .iter()
        .map(|(name, shape)| {
            let model_name = key_map
                .rename(name)
                .ok()
                .flatten()
                .unwrap_or_else(|| name.clone());
            (model_name, (name.as_str(), shape.as_slice()))
        })
        .collect();
    let (mut matched, mut missing, mut mis_shaped) = (0, Vec::new(), Vec::new());
    let mut used = BTreeSet::new();
    for (name, want) in model {
        match renamed.get(name) {
            None => missing.push(name.clone()),
            Some((source, got)) => {
                used.insert(*source);
                let reshapes = key_map.may_reshape(name)
                    && got.iter().product::<usize>() == want.iter().product::<usize>();
                if got == want || reshapes {
                    matched += 1;
                } else {
                    mis_shaped.push((name.clone(), want.clone(), got.to_vec()));
                }
            }
        }
    }
    let unexpected = file
        .keys()
        .filter(|n| !used.contains(n.as_str()) && !key_map.may_be_unused(n))
        .cloned()
        .collect();
    (model.len(), matched, missing, mis_shaped, unexpected)
}

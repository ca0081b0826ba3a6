"""Importance-aware decision rules: recall/precision control at inference, without retraining
(the paper's future work, section V).

A decision rule is a vector b of per-class offsets added to the log-probabilities before the
argmax:

    y(x) = argmax_c  log p(c | x) + b_c  =  argmax_c  z_c(x) + b_c

The two forms are equal because log_softmax(z) = z - logsumexp(z) subtracts the same number from
every class of a pixel, which never changes the argmax; so the rule works directly on the
network's logits. It is the Bayes decision under a cost matrix whose misclassification cost
depends on the true class only (b_c = log cost_c): raising b_c labels more pixels c (recall of c
up, precision of c usually down). b = 0 is plain argmax, exactly, ties included.

`iaseg calibrate` fits b on a labelled split so that targets such as "G3.recall>=0.65" hold
while mean IoU (or another `--maximize` quantity) stays as high as possible:

1. run the network once, keep the logits (float16) and labels of the labelled pixels (optionally
   a random subsample, `--max-pixels`) in a cache file, so later calls with other targets skip
   the network;
2. if plain argmax already meets every target, return b = 0 exactly;
3. greedy: move one offset at a time, each move chosen (among the classes named by the targets,
   then among all classes if those are stuck) as the one that buys the largest reduction of the
   total target shortfall per point of objective lost;
4. polish: coordinate search over all offsets that keeps every target met and raises the
   objective; when no single move can, "trades": a move that raises the objective but breaks a
   target, followed by a few greedy moves that restore it.

Every candidate value of one offset is scored in a single pass over the cache: with the other
offsets fixed, pixel i is labelled c exactly when b_c > t_i = max_{j != c}(z_ij + b_j) - z_ic,
so a histogram of t_i split by (label, runner-up class) gives the confusion matrix for every
candidate b_c at once (`sweep_confusions`). Each accepted move is re-scored exactly with
`confusion_from_cache` (argmax + bincount), so the reported numbers are those of the rule.

The rule is a JSON file (`DecisionRule.save`, `load_rule`); `iaseg evaluate/predict
--decision-rule RULE.json` apply it, and `WithDecisionRule` bakes it into an exported model.

Modules: `rule` (the rule, its file, baking), `targets` (the target language and objectives),
`cache` (the logits cache and the fast re-scoring on it), `search` (`calibrate`), `plots` (the
before/after page, trade-off curves, the files `iaseg calibrate` writes).
"""
from .cache import (CACHE_FORMAT, CACHE_VERSION, DEFAULT_MAX_PIXELS, CalibrationData, collect_logits,
                    confusion_from_cache, flip_thresholds, sweep_confusions)
from .plots import before_after_markdown, tradeoff_curves, tradeoff_plot, write_calibration_outputs
from .rule import (FORMAT, ONNX_METADATA_KEY, VERSION, DecisionRule, DecisionRuleError, WithDecisionRule,
                   bake_decision_rule, load_rule)
from .search import CalibrationResult, calibrate, guarded_classes, targeted_classes
from .targets import OBJECTIVES, Quantity, Target, parse_objective, parse_target

__all__ = [
    "CACHE_FORMAT", "CACHE_VERSION", "DEFAULT_MAX_PIXELS", "FORMAT", "OBJECTIVES", "ONNX_METADATA_KEY", "VERSION",
    "CalibrationData", "CalibrationResult", "DecisionRule", "DecisionRuleError", "Quantity", "Target",
    "WithDecisionRule", "bake_decision_rule", "before_after_markdown", "calibrate", "collect_logits",
    "confusion_from_cache", "flip_thresholds", "guarded_classes", "load_rule", "parse_objective", "parse_target", "sweep_confusions",
    "targeted_classes", "tradeoff_curves", "tradeoff_plot", "write_calibration_outputs",
]

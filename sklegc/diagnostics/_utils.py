"""Shared plumbing of the diagnostics: quiet third-party calls, unwrapping fitted estimators."""

import contextlib
import copy
import io
import logging
import warnings

import numpy as np

# Loggers of the diagnostic libraries, silenced unless the caller asks for their output.
_NOISY_LOGGERS = ("weightwatcher", "RMT_Util", "shap")


@contextlib.contextmanager
def quiet(verbose=False):
    """Keep the console clean of what shap and weightwatcher print, log and warn.

    weightwatcher calls ``logging.basicConfig(level=INFO)`` when first imported, which would
    configure the user's root logger for the rest of the session; the root logger's handlers
    and level are restored on exit whatever ``verbose`` is.
    """
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    try:
        if verbose:
            yield
            return
        loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
        disabled = [logger.disabled for logger in loggers]
        sink = io.StringIO()
        try:
            for logger in loggers:
                logger.disabled = True
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            for logger, was_disabled in zip(loggers, disabled):
                logger.disabled = was_disabled
    finally:
        for handler in root.handlers[:]:
            if handler not in root_handlers:
                root.removeHandler(handler)
        root.setLevel(root_level)


@contextlib.contextmanager
def numpy_seed(seed):
    """Seed numpy's global generator (which shap's Kernel explainer samples from), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def final_step(estimator):
    """The fitted estimator itself, or the last step of a fitted Pipeline.

    Raises ``NotFittedError`` when it is not fitted.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def legc_step(estimator):
    """The fitted ``LEGCPrunedClassifier`` of ``estimator`` (itself or a Pipeline's last step)."""
    step = final_step(estimator)
    if not (hasattr(step, "net_") and hasattr(step, "mask_")):
        raise TypeError(
            "expected a fitted LEGCPrunedClassifier or a Pipeline ending in one, got "
            f"{type(step).__name__}."
        )
    return step


def effective_module(estimator):
    """A CPU copy of the trained network in eval mode with the pruning masks made permanent.

    Each prunable layer's ``weight`` is then a plain parameter holding the effective weights
    (pruned entries exactly 0), which is what tools that read ``weight`` should see. The
    estimator's own network is left untouched.
    """
    from torch.nn.utils import prune

    from ..network import prunable_layers

    module = copy.deepcopy(legc_step(estimator).net_.module_).cpu().eval()
    for _, layer in prunable_layers(module):
        if hasattr(layer, "weight_orig"):
            prune.remove(layer, "weight")
    module.requires_grad_(False)
    return module

"""scikit-learn's ``MLPClassifier`` vocabulary, in one place.

:class:`LEGCPrunedClassifier` speaks ``MLPClassifier``'s language where the two mean the
same thing (``hidden_layer_sizes``, ``activation``, ``alpha``, ``batch_size``, ``tol``,
``n_iter_no_change``, ``early_stopping``, ``validation_fraction``, ``warm_start``,
``random_state``, ``verbose``; ``fit(X, y, sample_weight)``, ``partial_fit``,
``predict_log_proba``; the fitted ``coefs_``, ``intercepts_``, ``loss_curve_`` ...) and
skorch's where training is configured the skorch way (``lr``, ``max_epochs``,
``optimizer``). The ``MLPClassifier`` names that have a different spelling here are refused
with a message naming the equivalent (:data:`MLP_EQUIVALENTS`); any other unknown name gets
scikit-learn's error with a "did you mean".

When the mistake is recognisable (an ``MLPClassifier`` name, or a near miss of a valid
name) the constructor and ``set_params`` refuse it at once. Any other unknown name is kept
and refused when ``fit`` starts, before any training: scikit-learn's estimator checks
require the constructor and ``set_params`` to accept any name of the signature, which for
an estimator with ``**kwargs`` means any name at all.
"""

import difflib

import numpy as np

MLP_EQUIVALENTS = {
    "max_iter": "max_epochs (epochs of each training phase)",
    "learning_rate_init": "lr",
    "solver": "optimizer, a torch.optim class: optimizer=torch.optim.Adam ('adam', the "
              "default) or optimizer=torch.optim.SGD ('sgd'); 'lbfgs' has no equivalent, "
              "since the method traces the weights after every mini-batch step",
    "learning_rate": "a skorch LRScheduler callback, e.g. callbacks=[LRScheduler("
                     "torch.optim.lr_scheduler.ReduceLROnPlateau, monitor='train_loss')] for "
                     "'adaptive' (with optimizer=torch.optim.SGD)",
    "power_t": "a skorch LRScheduler callback, e.g. callbacks=[LRScheduler("
               "torch.optim.lr_scheduler.LambdaLR, lr_lambda=lambda epoch: (epoch + 1) ** "
               "-power_t)] for 'invscaling'",
    "momentum": "optimizer__momentum (with optimizer=torch.optim.SGD)",
    "nesterovs_momentum": "optimizer__nesterov (with optimizer=torch.optim.SGD)",
    "beta_1": "optimizer__betas=(beta_1, beta_2) (with optimizer=torch.optim.Adam)",
    "beta_2": "optimizer__betas=(beta_1, beta_2) (with optimizer=torch.optim.Adam)",
    "epsilon": "optimizer__eps (with optimizer=torch.optim.Adam)",
    "shuffle": "iterator_train__shuffle",
    "max_fun": "max_epochs to bound the training (max_fun bounds the function calls of "
               "the 'lbfgs' solver, which sklegc does not have)",
}
"""``MLPClassifier`` parameter -> what to use instead, for the names spelled differently."""


def recognised_mistake(name, valid):
    """Whether an unknown parameter ``name`` is an ``MLPClassifier`` name or a near miss."""
    return name in MLP_EQUIVALENTS or bool(difflib.get_close_matches(name, valid, n=1,
                                                                      cutoff=0.6))


def unknown_parameter_message(name, valid, owner="LEGCPrunedClassifier"):
    """The error text for a parameter ``name`` that ``owner`` does not have.

    Names ``MLPClassifier``'s equivalent when ``name`` is one of its parameters, and the
    closest valid names otherwise.
    """
    if name in MLP_EQUIVALENTS:
        return (f"{owner} has no parameter {name!r} (MLPClassifier's name); use "
                f"{MLP_EQUIVALENTS[name]}.")
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return (f"Invalid parameter {name!r} for estimator {owner}.{hint} Valid parameters are: "
            f"{sorted(valid)}; skorch-routed ones start with module__, optimizer__, "
            "iterator_train__, iterator_valid__ or callbacks__.")


class MLPVocabularyMixin:
    """``MLPClassifier``'s read-only fitted attributes and ``predict_log_proba``.

    The network's weights are read from the fitted module, so ``coefs_`` and
    ``intercepts_`` always show the model that predicts (after ``partial_fit`` too). They
    are read-only copies: writing into them raises instead of silently changing nothing
    (in ``MLPClassifier`` they are the model itself); change the network through
    ``net_.module_``, or export it with ``to_mlpclassifier()``.
    """

    @property
    def coefs_(self):
        """list of ndarray: ``coefs_[i]`` has shape (n_inputs, n_outputs) of layer ``i``.

        One entry per ``nn.Linear`` layer of the module, in module order, transposed to
        ``MLPClassifier``'s layout; pruned weights are exactly 0.
        """
        return [_read_only(w.T.copy()) for w in self._linear_arrays("weight")]

    @property
    def intercepts_(self):
        """list of ndarray: ``intercepts_[i]`` has shape (n_outputs,) of layer ``i``
        (read-only, as ``coefs_``)."""
        return [_read_only(b) for b in self._linear_arrays("bias")]

    def _linear_arrays(self, kind):
        from sklearn.utils.validation import check_is_fitted

        from .network import prunable_layers

        check_is_fitted(self)
        arrays = []
        for _, layer in prunable_layers(self.net_.module_):
            value = getattr(layer, kind)
            arrays.append(np.zeros(layer.out_features) if value is None
                          else value.detach().cpu().double().numpy().copy())
        return arrays

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


def _read_only(array):
    array.flags.writeable = False
    return array

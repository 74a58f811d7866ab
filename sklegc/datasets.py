"""Loaders for the datasets of the LEGCNet paper, with the paper's features and splits.

The tabular datasets are read from a directory given at run time (the ``data_dir``
argument, else the ``SKLEGC_DATA_DIR`` environment variable) that holds the files
named in :data:`DATA_FILES`. Where OpenML holds the same rows in the same order
(cancer, banknote, iris), a missing file falls back to :func:`sklearn.datasets.fetch_openml`.
``digits`` needs no file at all, and ``mnist`` always comes from OpenML (or its cache).

Splits follow the authors' code: ``np.random.seed(42); np.random.shuffle(rows)`` and
the first rows for training (see :func:`load_dataset`).
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import fetch_openml, load_digits
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils import Bunch

__all__ = [
    "DATASETS",
    "DATA_FILES",
    "DATA_DIR_ENV",
    "DatasetNotFoundError",
    "load_dataset",
]

DATA_DIR_ENV = "SKLEGC_DATA_DIR"

SEED = 42

DATASETS = ("cancer", "titanic", "banknote", "iris", "iris3f", "vowel", "digits", "mnist")

DATA_FILES = {
    "cancer": ("cancer.csv",),
    "titanic": ("titanic_train.csv", "titanic_test.csv", "titanic_test_labels.csv"),
    "banknote": ("banknote.csv",),
    "iris": ("iris.csv",),
    "iris3f": ("iris.csv",),
    "vowel": ("vowel.csv",),
    "digits": (),
    "mnist": (),
}

_CANCER_FEATURES = [
    "clump_thickness",
    "cell_size_uniformity",
    "cell_shape_uniformity",
    "marginal_adhesion",
    "single_epithelial_cell_size",
    "bare_nuclei",
    "bland_chromatin",
    "normal_nucleoli",
    "mitoses",
]
_BANKNOTE_FEATURES = ["variance", "skewness", "curtosis", "entropy"]
_IRIS_FEATURES = ["SepalLengthCm", "SepalWidthCm", "PetalLengthCm", "PetalWidthCm"]
_IRIS3F_FEATURES = ["SepalLengthCm", "PetalLengthCm", "PetalWidthCm"]
_TITANIC_FEATURES = ["Pclass", "Sex", "SibSp", "Parch", "Fare", "Embarked"]
_VOWEL_FEATURES = ["F1", "F2", "F3"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's file is not available and no fallback could provide the data."""


@dataclass(frozen=True)
class _Spec:
    """How the paper split and scaled one dataset.

    ``n_train`` is an int (a row count) or a float (a fraction, rounded down as
    ``int(fraction * n_rows)`` like the authors' code). ``shuffle`` says whether the
    rows are shuffled with seed 42 before the first ``n_train`` rows are taken.
    ``scaler`` is ``"standard"``, ``"minmax"`` or ``None``.
    """

    n_train: object
    shuffle: bool
    scaler: object
    split_text: str


_SPECS = {
    "cancer": _Spec(0.8, True, "standard", "shuffle (seed 42), first 80% train"),
    "titanic": _Spec(
        None, True, "standard", "given train/test files (train rows shuffled, seed 42)"
    ),
    "banknote": _Spec(0.8, True, "standard", "shuffle (seed 42), first 80% train"),
    "iris": _Spec(120, True, "standard", "shuffle (seed 42), first 120 rows train"),
    "iris3f": _Spec(120, True, "standard", "shuffle (seed 42), first 120 rows train"),
    "vowel": _Spec(741, True, "minmax", "shuffle (seed 42), first 741 rows train"),
    "digits": _Spec(0.7, False, None, "no shuffle, first 70% train"),
    "mnist": _Spec(0.7, False, None, "no shuffle, first 70% train"),
}

# OpenML copies holding the same rows, in the same order, as the files above.
_OPENML = {
    "cancer": {"data_id": 15, "title": "breast-w"},
    "banknote": {"data_id": 1462, "title": "banknote-authentication"},
    "iris": {"data_id": 61, "title": "iris"},
    "iris3f": {"data_id": 61, "title": "iris"},
}

_NO_FALLBACK_REASON = {
    "titanic": (
        "OpenML's Titanic (1309 passengers) does not carry Kaggle's train/test split, "
        "so it cannot give the paper's split"
    ),
    "vowel": "the Indian Telugu vowel data (Pal & Majumder) is not on OpenML",
}


def _data_dir(data_dir):
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def _missing_files(name, directory):
    if directory is None:
        return list(DATA_FILES[name])
    return [f for f in DATA_FILES[name] if not (directory / f).is_file()]


def _not_found(name, directory, missing, fallback_note):
    files = ", ".join(DATA_FILES[name])
    if directory is None:
        tried = f"no data directory given (data_dir=None and ${DATA_DIR_ENV} unset)"
    else:
        tried = "looked for " + ", ".join(str(directory / f) for f in missing) + " (missing)"
    return DatasetNotFoundError(
        f"dataset {name!r} needs the file(s) {files}. Put them in a directory and pass it "
        f"as data_dir=... or set the environment variable {DATA_DIR_ENV}. Tried: {tried}; "
        f"{fallback_note}."
    )


def _no_fallback(name, directory, missing):
    return _not_found(name, directory, missing, "no OpenML fallback: " + _NO_FALLBACK_REASON[name])


def _fetch_openml_fallback(name, directory, missing):
    source = _OPENML.get(name)
    if source is None:
        raise _no_fallback(name, directory, missing)
    try:
        bunch = fetch_openml(data_id=source["data_id"], as_frame=True, parser="auto")
    except Exception as exc:
        note = (
            f"OpenML fallback fetch_openml(data_id={source['data_id']}) "
            f"({source['title']}) failed: {type(exc).__name__}: {exc}"
        )
        raise _not_found(name, directory, missing, note) from exc
    return bunch, f"OpenML data_id={source['data_id']} ({source['title']})"


def _cancer_from_openml(bunch):
    """breast-w: 699 rows, 16 with a missing Bare_Nuclei; dropping them leaves the 683 rows."""
    frame = bunch.data.iloc[:, :9].astype(float)
    labels = pd.Series(np.asarray(bunch.target).astype(str), index=frame.index).str.lower()
    keep = frame.notna().all(axis=1) & labels.notna()
    codes = {"benign": 0, "malignant": 1, "2": 0, "4": 1}
    unknown = set(labels[keep]) - set(codes)
    if unknown:
        raise ValueError(
            f"unexpected breast-w class labels {sorted(unknown)}; expected {sorted(codes)}"
        )
    return frame[keep].to_numpy(), labels[keep].map(codes).to_numpy(dtype=int)


def _banknote_from_openml(bunch):
    """banknote-authentication: Class '1' (genuine) and '2' (forged) are 0 and 1 in the file."""
    X = bunch.data.iloc[:, :4].astype(float).to_numpy()
    y = np.asarray(bunch.target).astype(int) - 1
    return X, y


def _iris_from_openml(bunch):
    return bunch.data.iloc[:, :4].astype(float).to_numpy(), np.asarray(bunch.target).astype(str)


def _read_table(name, directory):
    """Features (all rows, in file order), labels, feature names and a source text."""
    missing = _missing_files(name, directory)
    if missing:
        bunch, source = _fetch_openml_fallback(name, directory, missing)
        if name == "cancer":
            X, y = _cancer_from_openml(bunch)
            names = _CANCER_FEATURES
        elif name == "banknote":
            X, y = _banknote_from_openml(bunch)
            names = _BANKNOTE_FEATURES
        else:
            X, y = _iris_from_openml(bunch)
            names = _IRIS_FEATURES
    else:
        path = directory / DATA_FILES[name][0]
        source = str(path)
        if name in ("cancer", "banknote"):
            names = _CANCER_FEATURES if name == "cancer" else _BANKNOTE_FEATURES
            frame = pd.read_csv(path, header=None)
            _check_columns(path, frame.shape[1], len(names) + 1)
            X, y = frame.iloc[:, :-1].to_numpy(dtype=float), frame.iloc[:, -1].to_numpy(dtype=int)
        elif name == "vowel":
            frame = _read_with_columns(path, _VOWEL_FEATURES + ["Y"])
            X, y = frame[_VOWEL_FEATURES].to_numpy(dtype=float), frame["Y"].to_numpy(dtype=int)
            names = _VOWEL_FEATURES
        else:
            frame = _read_with_columns(path, _IRIS_FEATURES + ["Species"])
            X, y = frame[_IRIS_FEATURES].to_numpy(dtype=float), frame["Species"].to_numpy(dtype=str)
            names = _IRIS_FEATURES
    if name == "iris3f":
        columns = [_IRIS_FEATURES.index(f) for f in _IRIS3F_FEATURES]
        X, names = X[:, columns], _IRIS3F_FEATURES
    return X, y, list(names), source


def _check_columns(path, found, expected):
    if found != expected:
        raise ValueError(f"{path}: expected {expected} columns, found {found}")


def _read_with_columns(path, columns):
    frame = pd.read_csv(path)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"{path}: missing column(s) {absent}; found {list(frame.columns)}")
    return frame


def _titanic_features(frame, embarked_fill, fare_fill):
    out = pd.DataFrame(index=frame.index)
    out["Pclass"] = frame["Pclass"].astype(float)
    out["Sex"] = frame["Sex"].map({"male": 1.0, "female": 0.0})
    out["SibSp"] = frame["SibSp"].astype(float)
    out["Parch"] = frame["Parch"].astype(float)
    out["Fare"] = frame["Fare"].astype(float).fillna(fare_fill)
    out["Embarked"] = frame["Embarked"].map({"S": 0.0, "C": 1.0, "Q": 2.0}).fillna(embarked_fill)
    return out.to_numpy(dtype=float)


def _read_titanic(directory):
    missing = _missing_files("titanic", directory)
    if missing:
        raise _no_fallback("titanic", directory, missing)
    train_path, test_path, labels_path = (directory / f for f in DATA_FILES["titanic"])
    train = _read_with_columns(train_path, ["PassengerId", "Survived"] + _TITANIC_FEATURES)
    test = _read_with_columns(test_path, ["PassengerId"] + _TITANIC_FEATURES)
    labels = _read_with_columns(labels_path, ["PassengerId", "Survived"])
    test = test.merge(
        labels[["PassengerId", "Survived"]], on="PassengerId", how="left", validate="1:1"
    )
    if test["Survived"].isna().any():
        absent = test.loc[test["Survived"].isna(), "PassengerId"].tolist()
        raise ValueError(f"{labels_path}: no label for PassengerId {absent[:10]}")

    # Fill values come from the training file only, so the test file cannot shape them.
    embarked_fill = train["Embarked"].map({"S": 0.0, "C": 1.0, "Q": 2.0}).mode().iloc[0]
    fare_fill = train["Fare"].mode().iloc[0]
    X_train = _titanic_features(train, embarked_fill, fare_fill)
    X_test = _titanic_features(test, embarked_fill, fare_fill)
    y_train = train["Survived"].to_numpy(dtype=int)
    y_test = test["Survived"].to_numpy(dtype=int)

    # The authors' code permuted the training rows (seed 42); with batch-size-1 SGD the
    # row order is part of the experiment.
    order = np.random.RandomState(SEED).permutation(len(X_train))
    source = f"{train_path}, {test_path}, {labels_path}"
    return X_train[order], X_test, y_train[order], y_test, source


def _read_sklearn_digits():
    digits = load_digits()
    X, y = digits.data.astype(float), digits.target.astype(int)
    return X, y, list(digits.feature_names), "sklearn load_digits"


def _read_mnist():
    try:
        bunch = fetch_openml("mnist_784", version=1, as_frame=False, parser="auto")
    except Exception as exc:
        raise DatasetNotFoundError(
            "dataset 'mnist' comes from fetch_openml('mnist_784', version=1), which needs "
            "network access or a filled scikit-learn data cache "
            "(sklearn.datasets.get_data_home()); "
            f"it failed: {type(exc).__name__}: {exc}. The bundled 'digits' dataset needs neither."
        ) from exc
    X = np.asarray(bunch.data, dtype=float)
    y = np.asarray(bunch.target).astype(int)
    return X, y, list(bunch.feature_names), "OpenML mnist_784 (version 1)"


def _split(X, y, spec):
    n_rows = len(X)
    n_train = spec.n_train if isinstance(spec.n_train, int) else int(spec.n_train * n_rows)
    if spec.shuffle:
        # Same order as the authors' np.random.seed(42); np.random.shuffle(rows),
        # without touching numpy's global random state.
        order = np.random.RandomState(SEED).permutation(n_rows)
        X, y = X[order], y[order]
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]


def _make_scaler(kind):
    return StandardScaler() if kind == "standard" else MinMaxScaler()


def _scale_as_authors(name, X_train, X_test):
    """The published preprocessing, test-set scaling included.

    For cancer, titanic and banknote the authors' code called
    ``StandardScaler().fit_transform(X.T)`` on the (rows, features) array, which
    standardizes every *row* across its features; iris and vowel were scaled per
    feature, the test rows with a scaler fitted on the test rows themselves.
    """
    if name in ("cancer", "titanic", "banknote"):
        return (
            StandardScaler().fit_transform(X_train.T).T,
            StandardScaler().fit_transform(X_test.T).T,
        )
    kind = _SPECS[name].scaler
    if kind is None:
        return X_train, X_test
    return _make_scaler(kind).fit_transform(X_train), _make_scaler(kind).fit_transform(X_test)


def load_dataset(name, data_dir=None, *, scale=True, return_X_y=False):
    """Load one of the paper's datasets, split and scaled as in the paper.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"cancer"``, ``"titanic"``, ``"banknote"``,
        ``"iris"``, ``"iris3f"`` (SepalLength, PetalLength, PetalWidth), ``"vowel"``,
        ``"digits"`` (scikit-learn's bundled 8x8 digits, standing in for MNIST) and
        ``"mnist"`` (``fetch_openml("mnist_784")``, network or cache needed).
    data_dir : str or path-like, default=None
        Directory holding the dataset files (names in :data:`DATA_FILES`). When None,
        the environment variable ``SKLEGC_DATA_DIR`` is used. If the file is absent,
        cancer, banknote, iris and iris3f fall back to the same data on OpenML;
        titanic and vowel have no such fallback.
    scale : bool or "authors", default=True
        True: scale as the paper did (standardize, min-max for vowel, nothing for
        digits/mnist) with the scaler fitted on the training rows only and applied
        to the test rows. False: raw features. ``"authors"``: reproduce the authors'
        published preprocessing exactly, including its flaws: the test rows were
        scaled with a scaler fitted on the test rows, and for cancer, titanic and
        banknote each row was standardized across its own features (their code
        scaled the transposed array). ``scaler`` is None in that case.
    return_X_y : bool, default=False
        If True, return ``(X_train, X_test, y_train, y_test)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train``, ``X_test`` (float64 arrays), ``y_train``, ``y_test`` (int arrays,
        classes encoded 0..C-1), ``feature_names``, ``target_names`` (the original
        label of each encoded class), ``name``, ``scaler`` (the scaler fitted on
        ``X_train``, or None) and ``description`` (one line naming the source).
    (X_train, X_test, y_train, y_test) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    ValueError
        If ``name`` or ``scale`` is not a valid choice.
    DatasetNotFoundError
        A subclass of FileNotFoundError: the file is missing and no fallback
        provided the data. The message names the file(s), ``data_dir`` and
        ``SKLEGC_DATA_DIR``, and what was tried.

    Notes
    -----
    Splits, from the authors' code: the rows of the file are shuffled as by
    ``np.random.seed(42); np.random.shuffle(rows)`` (computed here with
    ``np.random.RandomState(42).permutation``, which gives the same order without
    changing numpy's global state) and the first ``int(0.8 * n)`` rows (cancer,
    banknote), 120 rows (iris, iris3f) or 741 rows (vowel) are the training set.
    Titanic uses the given train and test files; its training rows are permuted with
    the same seed, as in the authors' code. Digits and MNIST take the first 70% of
    the rows without shuffling. The row order of OpenML's copies equals the files',
    so a fallback gives the same split. Nothing in the data itself can confirm the
    shuffle convention; other conventions (``sklearn.utils.shuffle``,
    ``DataFrame.sample``, ``train_test_split``, ``default_rng``) give other splits.

    Titanic features: Pclass, Sex (male=1, female=0), SibSp, Parch, Fare, Embarked
    (S=0, C=1, Q=2). The two missing Embarked values of the training file take the
    training mode (S); the one missing Fare of the test file takes the training mode
    (8.05). The authors filled it with the test file's mode (7.75).

    Examples
    --------
    >>> from sklegc.datasets import load_dataset
    >>> data = load_dataset("digits")
    >>> data.X_train.shape, data.X_test.shape
    ((1257, 64), (540, 64))
    >>> X_train, X_test, y_train, y_test = load_dataset(
    ...     "vowel", "/path/to/datasets", return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (741, 3)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names are {', '.join(DATASETS)}")
    if not (isinstance(scale, (bool, np.bool_)) or scale == "authors"):
        raise ValueError(f"scale must be True, False or 'authors', got {scale!r}")
    spec = _SPECS[name]

    if name == "titanic":
        X_train, X_test, y_train, y_test, source = _read_titanic(_data_dir(data_dir))
        feature_names = list(_TITANIC_FEATURES)
    else:
        if name == "digits":
            X, y, feature_names, source = _read_sklearn_digits()
        elif name == "mnist":
            X, y, feature_names, source = _read_mnist()
        else:
            X, y, feature_names, source = _read_table(name, _data_dir(data_dir))
        X_train, X_test, y_train, y_test = _split(X, y, spec)

    target_names, encoded = np.unique(np.concatenate([y_train, y_test]), return_inverse=True)
    y_train, y_test = encoded[: len(y_train)].astype(int), encoded[len(y_train) :].astype(int)

    scaler = None
    if scale == "authors":
        X_train, X_test = _scale_as_authors(name, X_train, X_test)
        scaling = "authors' scaling"
    elif scale and spec.scaler is not None:
        scaler = _make_scaler(spec.scaler).fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        scaling = f"{spec.scaler} scaling fitted on the training rows"
    else:
        scaling = "no scaling"

    X_train = np.ascontiguousarray(X_train, dtype=float)
    X_test = np.ascontiguousarray(X_test, dtype=float)
    if return_X_y:
        return X_train, X_test, y_train, y_test
    description = (
        f"{name}: {len(X_train)} train / {len(X_test)} test rows, {X_train.shape[1]} features, "
        f"{len(target_names)} classes; {spec.split_text}; {scaling}; source: {source}"
    )
    return Bunch(
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        feature_names=feature_names,
        target_names=target_names,
        name=name,
        scaler=scaler,
        description=description,
    )

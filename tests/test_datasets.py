import doctest
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

import sklegc.datasets as ds
from sklegc.datasets import DATASETS, DatasetNotFoundError, load_dataset


def _shared_data_dir():
    env = os.environ.get(ds.DATA_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


DATA_DIR = _shared_data_dir()
needs_files = pytest.mark.skipif(
    not (DATA_DIR / "cancer.csv").is_file(),
    reason=f"dataset files not found in {DATA_DIR} (set {ds.DATA_DIR_ENV} to their directory)",
)

TABULAR = ("cancer", "titanic", "banknote", "iris", "iris3f", "vowel")

# name: (train rows, test rows, features, classes); the test sizes match the
# denominators of the paper's accuracies (e.g. 120/137, 302/418, 248/275, 97/130).
SHAPES = {
    "cancer": (546, 137, 9, 2),
    "titanic": (891, 418, 6, 2),
    "banknote": (1097, 275, 4, 2),
    "iris": (120, 30, 4, 3),
    "iris3f": (120, 30, 3, 3),
    "vowel": (741, 130, 3, 6),
    "digits": (1257, 540, 64, 10),
}


def _authors_shuffle(array):
    """The authors' split code, verbatim in effect: seed the global state, shuffle rows."""
    array = np.array(array)
    state = np.random.get_state()
    try:
        np.random.seed(42)
        np.random.shuffle(array)
    finally:
        np.random.set_state(state)
    return array


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def fail(*args, **kwargs):
        calls.append(kwargs)
        raise OSError("network is unreachable")

    monkeypatch.setattr(ds, "fetch_openml", fail)
    return calls


@needs_files
@pytest.mark.parametrize("name", TABULAR)
def test_shapes_and_no_nan(name):
    n_train, n_test, n_features, n_classes = SHAPES[name]
    for scale in (True, False, "authors"):
        data = load_dataset(name, DATA_DIR, scale=scale)
        assert data.X_train.shape == (n_train, n_features)
        assert data.X_test.shape == (n_test, n_features)
        assert data.y_train.shape == (n_train,) and data.y_test.shape == (n_test,)
        assert data.X_train.dtype == np.float64 and data.y_train.dtype.kind == "i"
        assert len(data.target_names) == n_classes and len(data.feature_names) == n_features
        assert not np.isnan(data.X_train).any() and not np.isnan(data.X_test).any()
        assert set(np.unique(np.r_[data.y_train, data.y_test])) == set(range(n_classes))
        assert data.name == name
        assert str(DATA_DIR) in data.description


def test_digits_without_data_dir(no_env):
    data = load_dataset("digits")
    n_train, n_test, n_features, _ = SHAPES["digits"]
    assert data.X_train.shape == (n_train, n_features) and data.X_test.shape == (n_test, n_features)
    digits = load_digits()
    np.testing.assert_array_equal(data.X_train, digits.data[:n_train])
    np.testing.assert_array_equal(data.y_test, digits.target[n_train:])
    assert data.scaler is None
    np.testing.assert_array_equal(data.target_names, np.arange(10))


@needs_files
def test_feature_names():
    assert load_dataset("cancer", DATA_DIR).feature_names[0] == "clump_thickness"
    assert load_dataset("banknote", DATA_DIR).feature_names == [
        "variance", "skewness", "curtosis", "entropy"
    ]
    assert load_dataset("titanic", DATA_DIR).feature_names == [
        "Pclass", "Sex", "SibSp", "Parch", "Fare", "Embarked"
    ]
    assert load_dataset("vowel", DATA_DIR).feature_names == ["F1", "F2", "F3"]
    assert load_dataset("iris", DATA_DIR).feature_names == [
        "SepalLengthCm", "SepalWidthCm", "PetalLengthCm", "PetalWidthCm"
    ]
    assert load_dataset("iris3f", DATA_DIR).feature_names == [
        "SepalLengthCm", "PetalLengthCm", "PetalWidthCm"
    ]


@needs_files
@pytest.mark.parametrize(
    "name, counts",
    [
        ("cancer", [444, 239]),
        ("banknote", [762, 610]),
        ("iris", [50, 50, 50]),
        ("vowel", [72, 89, 172, 151, 207, 180]),
    ],
)
def test_class_counts(name, counts):
    data = load_dataset(name, DATA_DIR)
    np.testing.assert_array_equal(np.bincount(np.r_[data.y_train, data.y_test]), counts)


@needs_files
def test_label_encodings():
    vowel = load_dataset("vowel", DATA_DIR, scale=False)
    np.testing.assert_array_equal(vowel.target_names, [1, 2, 3, 4, 5, 6])
    raw = _authors_shuffle(pd.read_csv(DATA_DIR / "vowel.csv").to_numpy())
    np.testing.assert_array_equal(vowel.y_train, raw[:741, 3] - 1)

    iris = load_dataset("iris", DATA_DIR, scale=False)
    np.testing.assert_array_equal(
        iris.target_names, ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    )
    raw = _authors_shuffle(pd.read_csv(DATA_DIR / "iris.csv").to_numpy())
    np.testing.assert_array_equal(iris.target_names[iris.y_test], raw[120:, 5])

    cancer = load_dataset("cancer", DATA_DIR)
    np.testing.assert_array_equal(cancer.target_names, [0, 1])


@needs_files
@pytest.mark.parametrize(
    "name, file, n_train", [("cancer", "cancer.csv", 546), ("banknote", "banknote.csv", 1097)]
)
def test_split_is_the_authors_seeded_shuffle(name, file, n_train):
    raw = _authors_shuffle(pd.read_csv(DATA_DIR / file, header=None).to_numpy(dtype=float))
    state = np.random.get_state()[1].copy()
    data = load_dataset(name, DATA_DIR, scale=False)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    np.testing.assert_array_equal(data.X_train, raw[:n_train, :-1])
    np.testing.assert_array_equal(data.X_test, raw[n_train:, :-1])
    np.testing.assert_array_equal(data.y_test, raw[n_train:, -1])


@needs_files
def test_iris3f_columns_and_split():
    iris = load_dataset("iris", DATA_DIR, scale=False)
    iris3f = load_dataset("iris3f", DATA_DIR, scale=False)
    np.testing.assert_array_equal(iris3f.X_train, iris.X_train[:, [0, 2, 3]])
    np.testing.assert_array_equal(iris3f.y_test, iris.y_test)


@needs_files
def test_titanic_preprocessing():
    data = load_dataset("titanic", DATA_DIR, scale=False)
    train = pd.read_csv(DATA_DIR / "titanic_train.csv")
    test = pd.read_csv(DATA_DIR / "titanic_test.csv")
    labels = pd.read_csv(DATA_DIR / "titanic_test_labels.csv")

    # Test rows stay in file order; the first is 892: 3rd class, male, 0, 0, 7.8292, Q.
    np.testing.assert_array_equal(data.X_test[0], [3, 1, 0, 0, 7.8292, 2])
    np.testing.assert_array_equal(data.y_test, labels["Survived"])
    # The missing test Fare (PassengerId 1044) takes the training mode.
    row = np.flatnonzero(test["PassengerId"] == 1044)[0]
    assert data.X_test[row, 4] == train["Fare"].mode().iloc[0] == 8.05

    # Training rows are the file's rows permuted with seed 42, as the authors did.
    order = np.random.RandomState(42).permutation(len(train))
    np.testing.assert_array_equal(data.y_train, train["Survived"].to_numpy()[order])
    passengers = train["PassengerId"].to_numpy()[order]
    for missing in (62, 830):  # Embarked missing -> training mode, S = 0
        assert data.X_train[np.flatnonzero(passengers == missing)[0], 5] == 0
    first = train.iloc[order[0]]
    expected = [
        first.Pclass, first.Sex == "male", first.SibSp, first.Parch, first.Fare,
        {"S": 0, "C": 1, "Q": 2}[first.Embarked],
    ]
    np.testing.assert_array_equal(data.X_train[0], np.asarray(expected, dtype=float))
    assert set(np.unique(data.X_train[:, 1])) == {0, 1}
    assert set(np.unique(np.r_[data.X_train[:, 5], data.X_test[:, 5]])) == {0, 1, 2}


@needs_files
@pytest.mark.parametrize("name", TABULAR)
def test_scaler_is_fitted_on_training_rows_only(name):
    raw = load_dataset(name, DATA_DIR, scale=False)
    data = load_dataset(name, DATA_DIR)
    if name == "vowel":
        np.testing.assert_array_equal(data.scaler.data_min_, raw.X_train.min(axis=0))
        np.testing.assert_array_equal(data.scaler.data_max_, raw.X_train.max(axis=0))
    else:
        np.testing.assert_allclose(data.scaler.mean_, raw.X_train.mean(axis=0))
        np.testing.assert_allclose(data.scaler.scale_, raw.X_train.std(axis=0))
        np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_test, data.scaler.transform(raw.X_test))
    assert raw.scaler is None


def _copy_data(tmp_path):
    # A scratch copy outside the project, so that a test row can be altered.
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target, ignore=shutil.ignore_patterns("*.md"))
    return target


@needs_files
def test_changing_a_test_row_changes_nothing_in_training(tmp_path):
    data_dir = _copy_data(tmp_path)
    before = load_dataset("banknote", data_dir)

    frame = pd.read_csv(data_dir / "banknote.csv", header=None)
    test_row = np.random.RandomState(42).permutation(len(frame))[-1]
    frame.iloc[test_row, :4] = 1e6
    frame.to_csv(data_dir / "banknote.csv", header=False, index=False)
    after = load_dataset("banknote", data_dir)

    np.testing.assert_array_equal(after.X_train, before.X_train)
    np.testing.assert_array_equal(after.scaler.mean_, before.scaler.mean_)
    np.testing.assert_array_equal(after.scaler.scale_, before.scaler.scale_)
    assert not np.array_equal(after.X_test, before.X_test)


@needs_files
def test_titanic_test_file_does_not_shape_training(tmp_path):
    data_dir = _copy_data(tmp_path)
    before = load_dataset("titanic", data_dir)

    test = pd.read_csv(data_dir / "titanic_test.csv")
    test["Fare"] = np.nan
    test["Embarked"] = np.nan
    test.to_csv(data_dir / "titanic_test.csv", index=False)
    after = load_dataset("titanic", data_dir)

    np.testing.assert_array_equal(after.X_train, before.X_train)
    np.testing.assert_array_equal(after.scaler.mean_, before.scaler.mean_)
    raw = load_dataset("titanic", data_dir, scale=False)
    assert (raw.X_test[:, 4] == 8.05).all() and (raw.X_test[:, 5] == 0).all()


@needs_files
def test_authors_scaling():
    cancer = load_dataset("cancer", DATA_DIR, scale="authors")
    assert cancer.scaler is None
    # Each row standardized across its own features (rows with equal features become 0).
    np.testing.assert_allclose(cancer.X_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(cancer.X_test.mean(axis=1), 0, atol=1e-12)
    iris = load_dataset("iris", DATA_DIR, scale="authors")
    np.testing.assert_allclose(iris.X_test.mean(axis=0), 0, atol=1e-12)  # test set's own scaler
    vowel = load_dataset("vowel", DATA_DIR, scale="authors")
    np.testing.assert_allclose(vowel.X_test.min(axis=0), 0)
    np.testing.assert_allclose(vowel.X_test.max(axis=0), 1)


@needs_files
@pytest.mark.parametrize("name", TABULAR + ("digits",))
def test_two_loads_are_identical(name):
    first, second = load_dataset(name, DATA_DIR), load_dataset(name, DATA_DIR)
    for key in ("X_train", "X_test", "y_train", "y_test", "target_names"):
        np.testing.assert_array_equal(first[key], second[key])
    assert first.description == second.description


@needs_files
def test_environment_variable_and_precedence(monkeypatch, tmp_path, offline):
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(DATA_DIR))
    assert load_dataset("vowel").X_train.shape == (741, 3)
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path))
    assert load_dataset("vowel", DATA_DIR).X_train.shape == (741, 3)


@needs_files
def test_return_X_y():
    X_train, X_test, y_train, y_test = load_dataset("iris", DATA_DIR, return_X_y=True)
    data = load_dataset("iris", DATA_DIR)
    np.testing.assert_array_equal(X_train, data.X_train)
    np.testing.assert_array_equal(y_test, data.y_test)


def test_missing_file_with_openml_failing(tmp_path, offline):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cancer", tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    expected = ("cancer.csv", ds.DATA_DIR_ENV, "data_dir", str(tmp_path / "cancer.csv"))
    for part in expected + ("data_id=15", "OSError"):
        assert part in message
    assert offline == [{"data_id": 15, "as_frame": True, "parser": "auto"}]
    assert isinstance(info.value.__cause__, OSError)


def test_no_data_dir_at_all(no_env, offline):
    with pytest.raises(FileNotFoundError, match=rf"banknote\.csv.*{ds.DATA_DIR_ENV}.*unset"):
        load_dataset("banknote")


@pytest.mark.parametrize(
    "name, files", [("vowel", ["vowel.csv"]), ("titanic", list(ds.DATA_FILES["titanic"]))]
)
def test_no_fallback_error_names_files(name, files, tmp_path, offline):
    with pytest.raises(DatasetNotFoundError, match="no OpenML fallback") as info:
        load_dataset(name, tmp_path)
    for file in files:
        assert file in str(info.value)
    assert ds.DATA_DIR_ENV in str(info.value)
    assert offline == []


def test_mnist_error_when_offline(offline):
    with pytest.raises(DatasetNotFoundError, match="mnist_784"):
        load_dataset("mnist")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'") as info:
        load_dataset("mnsit")
    for name in DATASETS:
        assert name in str(info.value)


def test_invalid_scale():
    with pytest.raises(ValueError, match="scale must be"):
        load_dataset("digits", scale="minmax")


def _fake_openml(monkeypatch, data, target):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return Bunch(data=data, target=target)

    monkeypatch.setattr(ds, "fetch_openml", fake)
    return calls


def test_cancer_fallback_drops_rows_with_missing_values(monkeypatch, tmp_path):
    rng = np.random.RandomState(0)
    values = rng.randint(1, 11, size=(12, 9)).astype(float)
    values[[3, 7], 5] = np.nan  # Bare_Nuclei, as in breast-w
    data = pd.DataFrame(values, columns=[f"f{i}" for i in range(9)])
    target = pd.Series(["benign", "malignant"] * 6, dtype="category")
    calls = _fake_openml(monkeypatch, data, target)

    loaded = load_dataset("cancer", tmp_path, scale=False)
    assert calls[0]["data_id"] == 15
    kept = np.delete(values, [3, 7], axis=0)
    kept_y = np.delete(np.array([0, 1] * 6), [3, 7])
    order = np.random.RandomState(42).permutation(10)
    np.testing.assert_array_equal(loaded.X_train, kept[order[:8]])
    np.testing.assert_array_equal(loaded.y_test, kept_y[order[8:]])
    np.testing.assert_array_equal(loaded.target_names, [0, 1])
    assert "OpenML data_id=15" in loaded.description
    assert loaded.feature_names == ds._CANCER_FEATURES


def test_banknote_and_iris3f_fallbacks(monkeypatch, no_env):
    values = np.arange(40, dtype=float).reshape(10, 4)
    _fake_openml(
        monkeypatch,
        pd.DataFrame(values, columns=["V1", "V2", "V3", "V4"]),
        pd.Series(["1", "2"] * 5, dtype="category"),
    )
    banknote = load_dataset("banknote", scale=False)
    order = np.random.RandomState(42).permutation(10)
    np.testing.assert_array_equal(banknote.X_train, values[order[:8]])
    np.testing.assert_array_equal(banknote.y_train, (np.array([0, 1] * 5))[order[:8]])

    species = np.repeat(["Iris-setosa", "Iris-versicolor", "Iris-virginica"], 50)
    iris_values = np.random.RandomState(1).rand(150, 4)
    _fake_openml(
        monkeypatch,
        pd.DataFrame(iris_values, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"]),
        pd.Series(species, dtype="category"),
    )
    iris3f = load_dataset("iris3f", scale=False)
    order = np.random.RandomState(42).permutation(150)
    np.testing.assert_array_equal(iris3f.X_train, iris_values[order[:120]][:, [0, 2, 3]])
    np.testing.assert_array_equal(iris3f.target_names[iris3f.y_test], species[order[120:]])


def test_docstring_examples():
    result = doctest.testmod(ds, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0

"""The library's own exception types (numpy only: importable from the serving path)."""

__all__ = ["NotFittedError", "ModelFormatError", "not_fitted"]


class NotFittedError(ValueError, AttributeError):
    """A model or calibrator was used before ``fit``. Like scikit-learn's ``NotFittedError`` it is both a
    ``ValueError`` and an ``AttributeError``, so callers catching either keep working; every unfitted call in the
    library raises this one type."""


def not_fitted(obj, hint="call fit(data) first"):
    """The error for an unfitted ``obj``, with the library's one message."""
    return NotFittedError(f"This {type(obj).__name__} instance is not fitted yet; {hint}.")


class ModelFormatError(ValueError):
    """A saved model cannot be read: missing or corrupt files, another format or library version, bad contents."""

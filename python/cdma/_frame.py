"""DataFrames from the native module's tables (a list of (name, kind, values, missing))."""

import pandas as pd


def frame(columns):
    """Builds a DataFrame; empty cells become pandas' missing values, never a number.

    Integer columns with empty cells are pandas' nullable ``Int64``, boolean ones ``boolean``;
    real columns hold NaN there, text columns None."""
    data = {}
    for name, kind, values, missing in columns:
        if kind == "integer":
            data[name] = pd.arrays.IntegerArray(values, missing) if missing is not None else values
        elif kind == "boolean":
            data[name] = pd.arrays.BooleanArray(values, missing) if missing is not None else values
        else:
            data[name] = values
    return pd.DataFrame(data)

"""The live `transactions` table, read from information_schema, against the one definition of a
transaction (domain/models.py): every field a column of a matching type and nullability. The
migrations stay SQL; this is what catches a field added to the model and forgotten there."""

from __future__ import annotations

import types
from decimal import Decimal
from typing import Union, get_args, get_origin

import psycopg
import pytest

from streamguard.domain.models import Transaction
from tests.stackfixture import StackHandle
from tests.unit.test_contract import RENAMED, model_fields, python_type

pytestmark = pytest.mark.integration

#: model type -> the PostgreSQL types a column of it may have
PG_TYPES = {
    str: {"text", "character", "character varying"},
    Decimal: {"numeric"},
    float: {"double precision"},
    int: {"timestamp with time zone"},  # ts_ms, epoch millis on the wire, a timestamptz stored
}


def allows_none(name: str) -> bool:
    annotation = Transaction.model_fields[name].annotation
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def test_the_transactions_table_has_a_column_for_every_field(infra: StackHandle) -> None:
    with psycopg.connect(infra.settings.db_url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable, numeric_precision, numeric_scale"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = 'transactions'"
        ).fetchall()
    columns = {row[0]: row[1:] for row in rows}
    for name in model_fields():
        column = RENAMED.get(name, name)
        assert column in columns, f"{name}: no column {column} in the migrations' transactions"
        data_type, nullable, precision, scale = columns[column]
        expected = PG_TYPES[python_type(name)]
        assert data_type in expected, f"{name}: column {column} is {data_type}, model {expected}"
        assert (nullable == "YES") == allows_none(name), (
            f"{name}: column {column} nullable={nullable}, model allows None={allows_none(name)}"
        )
        if data_type == "numeric":
            assert (precision, scale) == (14, 2), f"{name}: numeric({precision}, {scale})"

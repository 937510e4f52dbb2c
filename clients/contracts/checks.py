"""Checks of a contract against the federation, before and after reading the data.

Before (`check_contract`, at load time): every block produces exactly the features of its schema
(`configs/block/<block>.yaml`, or the node's own `blocks/<block>.yaml` beside the contract); every op
exists and gets the parameters it knows; every column an op reads is declared with a fitting type and is
neither an audit column, a person pseudonym, nor a protected attribute or person identifier by name.
After (`check_data`, at build time): the same for columns that only the data file names (`columns_from`),
and the content rules (BSNs, names, addresses).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pandas as pd

from clients.contracts.points import point_column
from clients.contracts.ops import ColumnUse
from clients.contracts.protected import CONTENT_TYPES, Rules, content_violation, load_rules
from clients.contracts.registry import OPS, get_op
from clients.contracts.spec import TIME_TYPES, ColumnSpec, Contract, FeatureSpec, TableSpec
from clients.contracts.validation import Table
from federation.errors import ConfigError, ContractError


def _schema(contract: Contract, block: str):
    from federation.blocks import LOCAL_DIR, project_block

    try:
        schema = project_block(block) or contract.local_blocks.get(block)
    except ConfigError as err:
        raise contract.error(f"block '{block}': no usable block schema configs/block/{block}.yaml ({err})") from None
    if schema is None:
        raise contract.error(f"block '{block}': no usable block schema configs/block/{block}.yaml nor "
                             f"{LOCAL_DIR}/{block}.yaml beside the contract")
    return schema


def _ordered_blocks(contract: Contract) -> dict[str, tuple[FeatureSpec, ...]]:
    """Each block's features in the federation-wide order; refuse extra or missing features."""
    out = {}
    for block, feats in contract.blocks.items():
        schema = _schema(contract, block)
        wanted = schema.features
        have = {f.name: f for f in feats}
        for f in feats:
            if f.name not in wanted:
                raise contract.error(f"block '{block}', feature '{f.name}': not a feature of {schema.source} "
                                     f"(its features: {', '.join(wanted)})")
        for name in wanted:
            if name not in have:
                raise contract.error(f"block '{block}': feature '{name}' of {schema.source} is not "
                                     "produced by the contract")
        out[block] = tuple(have[name] for name in wanted)
    return out


def column_spec(table: TableSpec, column: str) -> ColumnSpec | None:
    """The declared type of a column (`column_default` for columns only `columns_from` names)."""
    if column in table.columns:
        return table.columns[column]
    if table.columns_from and table.column_default is not None:
        return dataclasses.replace(table.column_default, name=column)
    return None


def _check_use(contract: Contract, feature: FeatureSpec, use: ColumnUse, rules: Rules) -> None:
    where = feature.where()
    table = contract.tables.get(use.table)
    if table is None:
        raise contract.error(f"{where}: table '{use.table}' is not declared under `tables` "
                             f"(declared: {', '.join(contract.tables)})")
    col = column_spec(table, use.column)
    if col is None:
        raise contract.error(f"{where}: column '{use.column}' ({use.role}) is not a column of table '{use.table}'")
    if col.type not in use.kinds:
        raise contract.error(f"{where}: column '{use.column}' of table '{use.table}' has type {col.type}; "
                             f"as {use.role} it must be {' or '.join(use.kinds)}")
    check_column_name(contract, feature, use, table, rules)


def check_column_name(contract: Contract, feature: FeatureSpec, use: ColumnUse, table: TableSpec,
                      rules: Rules) -> None:
    """Refuse audit columns, pseudonyms and protected or identifying column names as feature inputs."""
    where = f"{feature.where()}: column '{use.column}' of table '{use.table}' ({use.role})"
    if use.column in table.audit_columns:
        raise contract.error(f"{where} is an audit column: audit columns only audit errors, never feed a "
                             "feature (rule: audit_columns)")
    if use.column in table.person_columns:
        raise contract.error(f"{where} is a person pseudonym: pseudonyms only count the rows one person "
                             "touches (the privacy unit's k), never feed a feature (rule: person_columns)")
    rule = rules.match_name(use.column)
    if rule is not None:
        why = ("protected attributes are never features; keep it only as an audit column"
               if rule.group == "protected_attributes" else "person identifiers are never features")
        raise contract.error(f"{where} is refused by rule '{rule.label}' (pattern {rule.pattern.pattern!r} in "
                             f"{rules.path}): {why}")


def _check_where(contract: Contract, feature: FeatureSpec) -> None:
    where = feature.params.get("where")
    if where is None:
        return
    if not isinstance(where, Mapping):
        raise contract.error(f"{feature.where()}: `where` must map column names to a value or a list of values")
    table = contract.tables.get(str(feature.params.get("table")))
    for column, wanted in where.items():
        col = column_spec(table, str(column)) if table else None
        if col is None or col.type != "category":
            continue
        for value in (wanted if isinstance(wanted, (list, tuple)) else [wanted]):
            if str(value) not in col.values:
                raise contract.error(f"{feature.where()}: where {column} = {value!r} is not an allowed value of "
                                     f"'{column}' ({', '.join(col.values)})")


def check_feature(contract: Contract, feature: FeatureSpec, rules: Rules) -> None:
    op = get_op(feature.op)
    if op is None:
        raise contract.error(f"{feature.where()}: unknown op '{feature.op}' (known: {', '.join(OPS)})")
    missing = [k for k in op.required if k not in feature.params]
    if missing:
        raise contract.error(f"{feature.where()}: op '{feature.op}' needs parameter(s) {', '.join(missing)}")
    unknown = [k for k in feature.params if k not in op.required + op.optional]
    if unknown:
        raise contract.error(f"{feature.where()}: op '{feature.op}' has no parameter(s) {', '.join(unknown)} "
                             f"(it takes: {', '.join(op.required + op.optional)})")
    for param in op.params:
        param.check(feature.params.get(param.name), feature.where(), contract.error)
    table = contract.tables.get(str(feature.params["table"]))
    if table is None:
        raise contract.error(f"{feature.where()}: table '{feature.params['table']}' is not declared under `tables`")
    if table.area_column() is None and not table.area_template and point_column(table.columns) is None:
        raise contract.error(f"{feature.where()}: table '{table.name}' has no area (a column of type area, "
                             "a point column or `area_template`), so it cannot feed an area-level feature")
    op.check(feature.params, feature, contract)
    _check_where(contract, feature)
    for use in op.uses(feature.params):
        _check_use(contract, feature, use, rules)


def _check_tables(contract: Contract, rules: Rules) -> None:
    for table in contract.tables.values():
        for column in table.columns:
            rule = rules.is_protected_attribute(column)
            if rule is not None and column not in table.audit_columns:
                raise contract.error(f"table '{table.name}': column '{column}' is a protected attribute by rule "
                                     f"'{rule.label}' ({rules.path}); list it under `audit_columns` "
                                     "(audit only, never a feature)")


def _check_row_filters(contract: Contract, rules: Rules) -> None:
    """A table's `where` selects rows: never by a protected attribute, an audit column or a pseudonym."""
    for table in contract.tables.values():
        for cond in table.where:
            where = f"table '{table.name}', where: column '{cond.column}'"
            if cond.column in table.audit_columns or rules.is_protected_attribute(cond.column) is not None:
                raise contract.error(f"{where} is a protected attribute or audit column: rows are never selected "
                                     "by one (rule: audit_columns)")
            if cond.column in table.person_columns:
                raise contract.error(f"{where} is a person pseudonym: rows are never selected by person "
                                     "(rule: person_columns)")
            for value in [cond.equals or "", *(cond.isin or ()), *(cond.not_in or ())]:
                rule = rules.concept_in(value)
                if rule is not None and rule.group != "person_identifiers":
                    raise contract.error(f"{where}, value {value!r} names a protected attribute by its meaning: "
                                         f"concept {rule.name} ({rules.path}); rows are never selected by one")


def _check_references(contract: Contract) -> None:
    refs = [("from", r) for r in contract.periods.sources] + [("not_before", r) for r in contract.periods.not_before]
    for key, (table, column) in refs:
        spec = contract.tables.get(table)
        col = column_spec(spec, column) if spec else None
        if col is None or col.type not in TIME_TYPES:
            raise contract.error(f"periods.{key}: '{table}.{column}' must be a date, datetime or month column "
                                 "of a declared table")
    if contract.register_table is not None:
        spec = contract.tables.get(contract.register_table)
        if spec is None or not (spec.area_template or spec.area_column()):
            raise contract.error(f"area_register.table: '{contract.register_table}' must be a declared table "
                                 "with an area column or `area_template`")
        if not spec.privacy.is_public:
            raise contract.error(f"area_register.table: '{contract.register_table}' protects "
                                 f"{spec.privacy.describe()}; the areas a node releases on must come from a public "
                                 "table (privacy.unit: public) or a public register `path`, never from private "
                                 "records (rule: public_grid)")
    if contract.partition is not None:
        spec = contract.tables.get(contract.partition.table)
        if spec is None or column_spec(spec, contract.partition.column) is None:
            raise contract.error(f"partition: '{contract.partition.table}.{contract.partition.column}' is not "
                                 "a declared column")


def _check_meaning(contract: Contract, rules: Rules) -> None:
    """Protected concepts by meaning in what a contract says as well as what it reads: its description,
    each feature's name, and the columns and values its `where` filters select on."""
    def refuse(rule, what: str) -> None:
        raise contract.error(f"{what} names a protected attribute by its meaning: concept {rule.name} "
                             f"({rules.path}); such data may only be an audit column, never select or feed a feature")

    rule = rules.concept_in(contract.description or "")
    if rule is not None:
        refuse(rule, f"the contract's description {contract.description!r}")
    for feature in contract.features():
        rule = rules.concept_in(feature.name)
        if rule is not None:
            refuse(rule, f"{feature.where()}: the feature name")
        where = feature.params.get("where")
        for column, wanted in (where.items() if isinstance(where, Mapping) else []):
            for text in [str(column), *map(str, wanted if isinstance(wanted, (list, tuple)) else [wanted])]:
                rule = rules.match_name(text) if text == str(column) else rules.concept_in(text)
                if rule is not None and rule.group != "person_identifiers":
                    refuse(rule, f"{feature.where()}: where {column} = {wanted!r}")


def check_contract(contract: Contract, rules: Rules | None = None) -> Contract:
    """The contract with blocks in schema order, or a ContractError naming the file and the feature."""
    rules = rules or load_rules()
    contract = dataclasses.replace(contract, blocks=_ordered_blocks(contract))
    _check_tables(contract, rules)
    _check_meaning(contract, rules)
    _check_references(contract)
    _check_row_filters(contract, rules)
    for feature in contract.features():
        check_feature(contract, feature, rules)
    return contract


def check_public_tables(ctx) -> None:
    """`public` means published area-level figures: at most one row per area and period (its months, or the
    year column an op reads), else it is record-level data whose exact counts would leave without noise."""
    contract = ctx.contract
    for name, table in ctx.tables.items():
        spec = table.spec
        if not spec.privacy.is_public or table.area is None:
            continue
        key = pd.DataFrame({"area": table.area})
        for column, col in table.columns.items():
            if col.type in TIME_TYPES:
                key[column] = table.months(column)
        for feature in contract.features():
            year = feature.params.get("year")
            if str(feature.params.get("table")) == name and year and str(year) in table.data:
                key[str(year)] = table.data[str(year)].to_numpy()
        dup = key.duplicated(keep="first").to_numpy() & pd.notna(table.area)
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            per = ", ".join(c for c in key.columns if c != "area") or "(no period column)"
            raise contract.error(
                f"table '{name}' is declared public, but {table.raw.locate(row)} of {table.raw.path} repeats an "
                f"earlier row's area and period ({per}); {int(dup.sum())} row(s) like it. Public means published "
                "area-level figures, at most one row per area and period (rule: public_area_level): declare the "
                "table's privacy unit (a pseudonym column or `record`) so that its release is noised")


def check_data(contract: Contract, tables: Mapping[str, Table], rules: Rules | None = None) -> None:
    """After reading: columns only the data names, protected names there, and the content rules."""
    rules = rules or load_rules()
    for table in tables.values():
        if not table.spec.columns_from:
            continue
        for column in table.columns:
            rule = rules.is_protected_attribute(column)
            if rule is not None and column not in table.spec.audit_columns:
                raise contract.error(f"table '{table.spec.name}': column '{column}' ({table.raw.path}) is a "
                                     f"protected attribute by rule '{rule.label}' ({rules.path}); list it under "
                                     "`audit_columns` (audit only, never a feature)")
        for key, names in (("id", [table.spec.id] if table.spec.id else []),
                           ("audit_columns", table.spec.audit_columns),
                           ("person_columns", table.spec.person_columns)):
            for column in names:
                if column not in table.columns:
                    raise contract.error(f"table '{table.spec.name}': {key} names column '{column}', which "
                                         f"{table.raw.path} does not have")
    checked: set[tuple[str, str]] = set()
    for feature in contract.features():
        op = get_op(feature.op)
        for use in op.uses(feature.params):
            table = tables[use.table]
            if use.column not in table.columns:
                raise contract.error(f"{feature.where()}: column '{use.column}' ({use.role}) is not a column of "
                                     f"{table.raw.path}")
            if (use.table, use.column) not in checked:
                checked.add((use.table, use.column))
                _check_content(contract, feature, use, table, rules)


def _check_content(contract: Contract, feature: FeatureSpec, use: ColumnUse, table: Table, rules: Rules) -> None:
    col = table.columns[use.column]
    if col.type not in CONTENT_TYPES:
        return
    series = table.data[use.column]
    if col.type in ("category", "multi_category"):  # only declared values can occur: test those
        rule = content_violation(rules, pd.Series(col.values, dtype=object))
    else:
        rule = content_violation(rules, series)
    if rule is None:
        return
    if rule.check is not None:
        from clients.contracts.protected import CHECKS

        hits = CHECKS[rule.check](series.fillna("").astype(str))
    else:
        hits = series.fillna("").astype(str).str.fullmatch(rule.regex.pattern).to_numpy(dtype=bool)
    example = table.raw.locate(int(np.flatnonzero(hits)[0])) if hits.any() else "several rows"
    raise ContractError(
        f"{contract.path}: {feature.where()}: column '{use.column}' of {table.raw.path} ({use.role}) holds values "
        f"that look like {rule.description} (content rule '{rule.name}' in {rules.path}; e.g. {example}); "
        "person identifiers are never features")

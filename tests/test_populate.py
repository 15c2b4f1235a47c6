"""make, key_source, populate, progress and dj.populate over a pipeline, on every backend."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import blob


def _source_and_square(schema: dj.Schema, calls: list[dict[str, Any]],
                       fail_on: set[int] = frozenset()) -> tuple[Any, Any]:  # type: ignore[assignment]
    @schema
    class Number(dj.Manual):
        definition = """
        n : int32
        ---
        group_id : int16
        """

    @schema
    class Square(dj.Computed):
        definition = """
        -> Number
        ---
        square : int64
        """

        class Digit(dj.Part):
            definition = """
            -> master
            position : int16
            ---
            digit : int16
            """

        def make(self, key: dict[str, Any]) -> None:
            calls.append(dict(key))
            value = key["n"] ** 2
            self.insert1(dict(key, square=value))
            self.Digit.insert(dict(key, position=i, digit=int(d))
                              for i, d in enumerate(str(value)))
            if key["n"] in fail_on:  # fail after the master row and the parts are inserted
                raise ValueError(f"no square for {key['n']}")

    Number.insert([(n, n % 3) for n in range(12)])
    return Number, Square


def test_populate_computes_every_key_once(schema: dj.Schema) -> None:
    calls: list[dict[str, Any]] = []
    _, Square = _source_and_square(schema, calls)
    assert Square.progress() == (12, 12)
    result = Square.populate()
    assert result == {"success_count": 12, "error_list": []}
    assert sorted(c["n"] for c in calls) == list(range(12))
    assert all(set(c) == {"n"} for c in calls)
    assert dict(zip(*Square.fetch("n", "square"))) == {n: n * n for n in range(12)}
    assert len(Square.Digit) == sum(len(str(n * n)) for n in range(12))
    assert Square.progress() == (0, 12)
    assert Square.populate() == {"success_count": 0, "error_list": []}
    assert len(calls) == 12


def test_make_is_atomic_with_its_parts(schema: dj.Schema) -> None:
    calls: list[dict[str, Any]] = []
    _, Square = _source_and_square(schema, calls, fail_on={4, 7})
    with pytest.raises(ValueError, match="no square for 4"):
        Square.populate()
    # keys 0..3 committed, key 4 left nothing behind, nothing after it ran
    assert sorted(Square.fetch("n")) == [0, 1, 2, 3]
    assert sorted(set((Square.Digit).fetch("n"))) == [0, 1, 2, 3]
    result = Square.populate(suppress_errors=True)
    assert result["success_count"] == 6
    assert sorted(k["n"] for k, _ in result["error_list"]) == [4, 7]
    assert all(message.startswith("ValueError: no square for") for _, message in
               result["error_list"])
    assert 4 not in Square.fetch("n") and 7 not in Square.fetch("n")
    assert not (Square.Digit & [{"n": 4}, {"n": 7}])
    assert Square.progress() == (2, 12)


def test_make_transaction_joins_writes_without_savepoints(schema: dj.Schema) -> None:
    """A make is one all-or-nothing unit: its inserts join the transaction directly (two
    round trips per insert saved); an explicit nested transaction elsewhere still nests."""
    calls: list[dict[str, Any]] = []
    _, Square = _source_and_square(schema, calls, fail_on={5})
    engine = schema.connection.engine
    savepoints: list[Any] = []

    def count(*args: Any) -> None:
        savepoints.append(args)

    sa.event.listen(engine, "savepoint", count)
    try:
        result = Square.populate(suppress_errors=True)
        assert result["success_count"] == 11
        assert savepoints == []
        # the failed key left neither its master row nor its parts
        assert 5 not in Square.fetch("n") and 5 not in Square.Digit.fetch("n")
        with schema.connection.transaction:
            with schema.connection.transaction:
                pass
        assert len(savepoints) == 1
    finally:
        sa.event.remove(engine, "savepoint", count)


def test_error_objects_and_error_list(schema: dj.Schema) -> None:
    calls: list[dict[str, Any]] = []
    _, Square = _source_and_square(schema, calls, fail_on={5})
    result = Square.populate(suppress_errors=True, return_exception_objects=True)
    ((key, error),) = result["error_list"]
    assert key == {"n": 5} and isinstance(error, ValueError)


def test_inserts_only_inside_make(schema: dj.Schema) -> None:
    _, Square = _source_and_square(schema, [])
    with pytest.raises(dj.DataJointError, match="populate"):
        Square.insert1({"n": 1, "square": 1})
    with pytest.raises(dj.DataJointError, match="populate"):
        Square.Digit.insert1({"n": 1, "position": 0, "digit": 1})
    Square.insert1({"n": 1, "square": 1}, allow_direct_insert=True)
    Square.Digit.insert1({"n": 1, "position": 0, "digit": 1}, allow_direct_insert=True)
    assert Square.progress() == (11, 12)


def test_populate_refused_inside_a_transaction(schema: dj.Schema,
                                               connection: dj.Connection) -> None:
    _, Square = _source_and_square(schema, [])
    with connection.transaction, pytest.raises(dj.DataJointError, match="transaction"):
        Square.populate()


def test_bad_options(schema: dj.Schema) -> None:
    _, Square = _source_and_square(schema, [])
    with pytest.raises(dj.DataJointError, match="order"):
        Square.populate(order="sideways")
    with pytest.raises(dj.DataJointError, match="processes"):
        Square.populate(processes=0)
    with pytest.raises(dj.DataJointError, match="max_calls"):
        Square.populate(max_calls=-1)
    assert len(Square) == 0


@pytest.mark.parametrize("reserve_jobs", [False, True])
def test_restricted_populate_touches_exactly_the_restricted_keys(
        schema: dj.Schema, reserve_jobs: bool) -> None:
    calls: list[dict[str, Any]] = []
    Number, Square = _source_and_square(schema, calls)
    wanted = [{"n": n} for n in (1, 5, 6, 10, 11)]
    result = Square.populate(wanted, reserve_jobs=reserve_jobs)
    assert result["success_count"] == 5
    assert sorted(c["n"] for c in calls) == [1, 5, 6, 10, 11]
    assert sorted(Square.fetch("n")) == [1, 5, 6, 10, 11]
    assert len(schema.jobs) == 0
    calls.clear()
    result = Square.populate(Number & {"group_id": 2}, "n < 9", reserve_jobs=reserve_jobs)
    assert sorted(c["n"] for c in calls) == [2, 8]
    calls.clear()
    assert Square.populate(Number & "n >= 10", reserve_jobs=reserve_jobs)["success_count"] == 0
    assert calls == []


def test_max_calls_and_order(schema: dj.Schema) -> None:
    calls: list[dict[str, Any]] = []
    _, Square = _source_and_square(schema, calls)
    Square.populate(max_calls=3)
    assert [c["n"] for c in calls] == [0, 1, 2]
    calls.clear()
    Square.populate(max_calls=2, order="reverse")
    assert [c["n"] for c in calls] == [11, 10]
    calls.clear()
    Square.populate(order="random")
    assert sorted(c["n"] for c in calls) == list(range(3, 10))
    assert Square.progress() == (0, 12)


def test_key_source_is_evaluated_once_per_call(schema: dj.Schema,
                                               connection: dj.Connection) -> None:
    calls: list[dict[str, Any]] = []
    evaluations = []
    Number, _ = _source_and_square(schema, calls)

    @schema
    class Cube(dj.Computed):
        definition = """
        -> Number
        ---
        cube : int64
        """

        @property
        def key_source(self) -> Any:
            evaluations.append(1)
            return Number & "n < 6"

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, cube=key["n"] ** 3))

    selects = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "number" in statement:
            selects.append(statement)

    sa.event.listen(connection.engine, "before_cursor_execute", count)
    try:
        assert Cube.populate()["success_count"] == 6
    finally:
        sa.event.remove(connection.engine, "before_cursor_execute", count)
    assert len(evaluations) == 1
    assert len(selects) == 1  # the key source is read in one query, not once per key
    assert sorted(Cube.fetch("n")) == list(range(6))
    assert Cube.progress() == (0, 6)
    assert len(Cube.key_source) == 6  # class-level access evaluates the property


def test_default_key_source_joins_renamed_parents(schema: dj.Schema) -> None:
    @schema
    class Animal(dj.Manual):
        definition = """
        animal : varchar(16)
        """

    @schema
    class Method(dj.Lookup):
        definition = """
        method : varchar(16)
        """
        contents = [("fast",), ("slow",)]

    @schema
    class Pair(dj.Computed):
        definition = """
        -> Animal
        -> Animal.proj(other='animal')
        -> Method
        ---
        label : varchar(64)
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, label=f"{key['animal']}-{key['other']}-{key['method']}"))

    Animal.insert([("cat",), ("dog",), ("owl",)])
    assert set(Pair.key_source.primary_key) == {"animal", "other", "method"}
    assert len(Pair.key_source) == 18
    assert Pair.populate({"method": "slow"})["success_count"] == 9
    assert Pair.progress() == (9, 18)
    assert (Pair & {"animal": "cat", "other": "owl", "method": "slow"}).fetch1(
        "label") == "cat-owl-slow"


def test_key_source_override_with_an_expression(schema: dj.Schema) -> None:
    calls: list[dict[str, Any]] = []
    Number, _ = _source_and_square(schema, calls)

    @schema
    class Stage(dj.Lookup):
        definition = """
        stage : int16
        """
        contents = [(1,), (2,)]

    @schema
    class Staged(dj.Computed):
        definition = """
        -> Number
        -> Stage
        ---
        value : int64
        """
        key_source = (Number & {"group_id": 1}).proj() * (Stage & {"stage": 2})

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, value=key["n"] * 10 + key["stage"]))

    assert Staged.populate()["success_count"] == 4
    assert sorted(Staged.fetch("value")) == [12, 42, 72, 102]
    assert Staged.progress() == (0, 4)


def test_key_source_with_fewer_attributes_than_the_key(schema: dj.Schema) -> None:
    Number, _ = _source_and_square(schema, [])

    @schema
    class Divisor(dj.Computed):
        definition = """
        -> Number
        divisor : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            n = key["n"]
            self.insert(dict(key, divisor=d) for d in range(1, n + 1) if n % d == 0)

    assert Divisor.populate()["success_count"] == 12
    assert Divisor.progress() == (1, 12)  # 0 has no positive divisor: its make adds no row
    assert sorted((Divisor & {"n": 6}).fetch("divisor")) == [1, 2, 3, 6]


def test_make_kwargs_and_progress_bar(schema: dj.Schema, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    Number, _ = _source_and_square(schema, [])

    @schema
    class Scaled(dj.Computed):
        definition = """
        -> Number
        ---
        value : int64
        """

        def make(self, key: dict[str, Any], factor: int = 1) -> None:
            self.insert1(dict(key, value=key["n"] * factor))

    Scaled.populate(make_kwargs={"factor": 3}, display_progress=True)
    assert sorted(Scaled.fetch("value")) == [3 * n for n in range(12)]
    assert "Scaled" in capsys.readouterr().err
    remaining, total = Scaled.progress(display=True)
    assert (remaining, total) == (0, 12)
    assert "Completed 12 of 12" in capsys.readouterr().out


def _tripartite(schema: dj.Schema, log: list[str],
                during_compute: Callable[[dict[str, Any]], None] | None = None) -> tuple[Any, Any]:
    @schema
    class Signal(dj.Manual):
        definition = """
        signal_id : int32
        ---
        samples : longblob
        """

    @schema
    class Filtered(dj.Computed):
        definition = """
        -> Signal
        ---
        mean : float64
        """

        class Peak(dj.Part):
            definition = """
            -> master
            peak : int32
            """

        def make_fetch(self, key: dict[str, Any]) -> tuple[Any, ...]:
            log.append("fetch")
            return ((Signal & key).fetch1("samples"),)

        def make_compute(self, key: dict[str, Any], samples: Any) -> tuple[Any, ...]:
            log.append("compute")
            assert not self.connection.in_transaction  # the long step holds no transaction
            if during_compute is not None:
                during_compute(key)
            return float(samples.mean()), [int(i) for i in samples.argsort()[-2:]]

        def make_insert(self, key: dict[str, Any], mean: float, peaks: list[int]) -> None:
            log.append("insert")
            self.insert1(dict(key, mean=mean))
            self.Peak.insert(dict(key, peak=p) for p in peaks)

    import numpy as np

    Signal.insert([(i, np.arange(5, dtype=float) * (i + 1)) for i in range(3)])
    return Signal, Filtered


def test_three_part_make(schema: dj.Schema) -> None:
    log: list[str] = []
    _, Filtered = _tripartite(schema, log)
    assert Filtered.populate()["success_count"] == 3
    assert log == ["fetch", "compute", "fetch", "insert"] * 3
    assert sorted(Filtered.fetch("mean")) == [2.0, 4.0, 6.0]
    assert len(Filtered.Peak) == 6


def test_three_part_make_discards_results_when_inputs_changed(schema: dj.Schema) -> None:
    import numpy as np

    log: list[str] = []
    holder: dict[str, Any] = {}

    def change_input(key: dict[str, Any]) -> None:
        if key["signal_id"] == 1:  # another session edits the input during the compute
            other = dj.Connection(holder["url"])
            try:
                signal = holder["Signal"]
                table = signal._sa_table
                with other.session(write=True) as sa_conn:
                    sa_conn.execute(sa.update(table).where(table.c.signal_id == 1).values(
                        samples=blob.pack(np.zeros(5))))
            finally:
                other.close()

    Signal, Filtered = _tripartite(schema, log, change_input)
    holder["Signal"] = Signal
    holder["url"] = schema.connection.url.render_as_string(hide_password=False)
    result = Filtered.populate(suppress_errors=True)
    assert result["success_count"] == 2
    ((key, message),) = result["error_list"]
    assert key == {"signal_id": 1} and "changed" in message
    assert sorted(Filtered.fetch("signal_id")) == [0, 2]
    assert not (Filtered.Peak & {"signal_id": 1})
    assert Filtered.populate()["success_count"] == 1  # recomputed from the new input
    assert (Filtered & {"signal_id": 1}).fetch1("mean") == 0.0


def test_missing_make_is_an_error(schema: dj.Schema) -> None:
    Number, _ = _source_and_square(schema, [])

    @schema
    class Lazy(dj.Computed):
        definition = """
        -> Number
        """

    with pytest.raises(NotImplementedError, match="make"):
        Lazy.populate()


def test_no_default_key_source_without_parents(schema: dj.Schema) -> None:
    @schema
    class Orphan(dj.Imported):
        definition = """
        orphan_id : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            pass

    with pytest.raises(dj.DataJointError, match="key_source"):
        Orphan.populate()


def test_dj_populate_runs_a_pipeline_across_schemas_in_order(make_schema: Any) -> None:
    upstream, downstream = make_schema(), make_schema()
    order: list[str] = []

    @upstream
    class Subject(dj.Manual):
        definition = """
        subject : int32
        """

    @upstream
    class Recording(dj.Imported):
        definition = """
        -> Subject
        ---
        length : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            order.append("Recording")
            self.insert1(dict(key, length=10 + key["subject"]))

    @upstream
    class Spikes(dj.Computed):
        definition = """
        -> Recording
        ---
        count : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            order.append("Spikes")
            self.insert1(dict(key, count=(Recording & key).fetch1("length") * 2))

    @downstream
    class Rate(dj.Computed):
        definition = """
        -> Spikes
        ---
        rate : float64
        """

        def make(self, key: dict[str, Any]) -> None:
            order.append("Rate")
            count, length = (Spikes * Recording & key).fetch1("count", "length")
            self.insert1(dict(key, rate=count / length))

    @downstream
    class Summary(dj.Computed):
        definition = """
        -> Rate
        ---
        product : float64
        """

        def make(self, key: dict[str, Any]) -> None:
            order.append("Summary")
            rate, length = (Rate * Recording & key).fetch1("rate", "length")
            self.insert1(dict(key, product=rate * length))

    @upstream
    class Flag(dj.Computed):  # back in the upstream schema, below a downstream table
        definition = """
        -> Rate
        ---
        high : bool
        """

        def make(self, key: dict[str, Any]) -> None:
            order.append("Flag")
            self.insert1(dict(key, high=(Rate & key).fetch1("rate") > 1.5))

    def before(first: str, then: str) -> bool:
        return max(i for i, name in enumerate(order) if name == first) < min(
            i for i, name in enumerate(order) if name == then)

    Subject.insert([(1,), (2,)])
    # start from the downstream schema and the upstream schema: the order of the arguments,
    # of the schemas and of the declarations do not matter, the foreign keys do
    result = dj.populate(downstream, upstream)
    assert result["success_count"] == 10 and result["error_list"] == []
    assert order[:6] == ["Recording"] * 2 + ["Spikes"] * 2 + ["Rate"] * 2
    assert sorted(order[6:]) == ["Flag"] * 2 + ["Summary"] * 2
    assert before("Rate", "Flag") and before("Rate", "Summary")
    assert set(result["tables"]) == {f"{upstream.database}.{t}" for t in (
        "_recording", "__spikes", "__flag")} | {
        f"{downstream.database}.{t}" for t in ("__rate", "__summary")}
    assert sorted(Summary.fetch("product")) == [22.0, 24.0]
    assert len(Flag) == 2
    Subject.insert1((3,))
    Recording.populate()
    order.clear()
    assert dj.populate(Spikes, reserve_jobs=True)["success_count"] == 4  # Spikes and below
    assert order[:2] == ["Spikes", "Rate"] and sorted(order[2:]) == ["Flag", "Summary"]
    Subject.insert1((4,))
    order.clear()
    assert dj.populate(Subject)["success_count"] == 5
    assert order[:3] == ["Recording", "Spikes", "Rate"]


def test_dj_populate_accepts_a_module(make_schema: Any, tmp_path: Any) -> None:
    import types

    schema = make_schema()
    module = types.ModuleType("pipeline_module")
    module.schema = schema  # type: ignore[attr-defined]

    @schema
    class Base(dj.Manual):
        definition = """
        base : int32
        """

    @schema
    class Twice(dj.Computed):
        definition = """
        -> Base
        ---
        twice : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, twice=2 * key["base"]))

    Base.insert([(1,), (2,)])
    assert dj.populate(module)["success_count"] == 2
    with pytest.raises(dj.DataJointError):
        dj.populate()
    with pytest.raises(dj.DataJointError):
        dj.populate(io.StringIO())

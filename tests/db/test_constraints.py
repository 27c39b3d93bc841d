"""The database itself refuses incoherent rows, whatever the application does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.config import to_libpq_url


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


async def _any(conn: asyncpg.Connection, sql: str) -> asyncpg.Record:
    row = await conn.fetchrow(sql)
    assert row is not None
    return row


APPOINTMENT = (
    "INSERT INTO smart_health.appointments (patient_id, doctor_id, specialty_id, start_time, "
    "end_time, status) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6)"
)


async def _appointment_args(conn: asyncpg.Connection) -> tuple[int, int, int]:
    row = await _any(
        conn, "SELECT patient_id, doctor_id, specialty_id FROM smart_health.appointments LIMIT 1"
    )
    return row["patient_id"], row["doctor_id"], row["specialty_id"]


async def test_appointment_must_end_after_it_starts(conn: asyncpg.Connection) -> None:
    import datetime as dt

    p, d, s = await _appointment_args(conn)
    start = dt.datetime(2026, 1, 10, 10, tzinfo=dt.UTC)
    with pytest.raises(asyncpg.CheckViolationError, match="start_before_end"):
        await conn.execute(
            APPOINTMENT, p, d, s, start, start - dt.timedelta(minutes=20), "Scheduled"
        )


async def test_appointment_status_must_be_known(conn: asyncpg.Connection) -> None:
    import datetime as dt

    p, d, s = await _appointment_args(conn)
    start = dt.datetime(2026, 1, 10, 10, tzinfo=dt.UTC)
    with pytest.raises(asyncpg.CheckViolationError, match="status"):
        await conn.execute(APPOINTMENT, p, d, s, start, start + dt.timedelta(minutes=20), "Pending")


async def test_duplicate_document_is_refused(conn: asyncpg.Connection) -> None:
    row = await _any(
        conn, "SELECT document_type_id, document_number FROM smart_health.patients LIMIT 1"
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO smart_health.patients (document_type_id, document_number, first_name, "
            "first_surname, birth_date, gender) VALUES ($1, $2, 'Ana', 'Ruiz', '1990-01-01', 'F')",
            row["document_type_id"],
            row["document_number"],
        )


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("gender", "X", "gender"),
        ("document_number", "12 34", "document_number_format"),
        ("blood_type", "C+", "blood_type"),
    ],
)
async def test_patient_field_checks(
    conn: asyncpg.Connection, column: str, value: str, constraint: str
) -> None:
    values = {"document_number": "99887766", "gender": "F", "blood_type": "O+"}
    values[column] = value
    with pytest.raises(asyncpg.CheckViolationError, match=constraint):
        await conn.execute(
            "INSERT INTO smart_health.patients (document_type_id, document_number, first_name, "
            "first_surname, birth_date, gender, blood_type) "
            "VALUES (1, $1, 'Ana', 'Ruiz', '1990-01-01', $2, $3)",
            values["document_number"],
            values["gender"],
            values["blood_type"],
        )


async def test_unknown_document_type_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO smart_health.patients (document_type_id, document_number, first_name, "
            "first_surname, birth_date, gender) VALUES (9, '123456', 'Ana', 'Ruiz', "
            "'1990-01-01', 'F')"
        )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("systolic_pressure", 400),
        ("heart_rate", 0),
        ("temperature_c", 48),
        ("oxygen_saturation", 120),
        ("diastolic_pressure", 150),
    ],
)
async def test_vital_signs_outside_physiology_are_refused(
    conn: asyncpg.Connection, column: str, value: int
) -> None:
    row = await _any(
        conn,
        "SELECT medical_record_id FROM smart_health.medical_records "
        "WHERE systolic_pressure < 140 LIMIT 1",
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            f"UPDATE smart_health.medical_records SET {column} = $1 WHERE medical_record_id = $2",
            value,
            row["medical_record_id"],
        )


async def test_prescription_patient_must_match_its_record(conn: asyncpg.Connection) -> None:
    """The denormalised patient_id is tied to the record's by a composite foreign key."""
    record = await _any(
        conn, "SELECT medical_record_id, patient_id FROM smart_health.medical_records LIMIT 1"
    )
    other = await _any(
        conn,
        f"SELECT patient_id FROM smart_health.patients "
        f"WHERE patient_id <> {record['patient_id']} LIMIT 1",
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO smart_health.prescriptions (medical_record_id, patient_id, medication_id, "
            "dosage, frequency, duration_days, prescription_date) "
            "VALUES ($1, $2, 1, '1 tableta', 'cada 12 horas', 30, '2026-01-01')",
            record["medical_record_id"],
            other["patient_id"],
        )


async def test_diagnosis_type_must_be_known(conn: asyncpg.Connection) -> None:
    row = await _any(
        conn, "SELECT medical_record_id, patient_id FROM smart_health.medical_records LIMIT 1"
    )
    with pytest.raises(asyncpg.CheckViolationError, match="diagnosis_type"):
        await conn.execute(
            "INSERT INTO smart_health.record_diagnoses (medical_record_id, patient_id, "
            "diagnosis_id, diagnosis_type) VALUES ($1, $2, 1, 'Probable')",
            row["medical_record_id"],
            row["patient_id"],
        )


async def test_every_patient_scoped_table_has_a_patient_id_index(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(
        """
        SELECT c.table_name,
               EXISTS (SELECT 1 FROM pg_index i
                       JOIN pg_class t ON t.oid = i.indrelid
                       JOIN pg_namespace n ON n.oid = t.relnamespace
                       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
                       WHERE n.nspname = 'smart_health' AND t.relname = c.table_name
                         AND a.attname = 'patient_id') AS indexed
        FROM information_schema.columns c
        WHERE c.table_schema = 'smart_health' AND c.column_name = 'patient_id'
        """
    )
    assert len(rows) >= 6
    assert {r["table_name"]: r["indexed"] for r in rows} == {r["table_name"]: True for r in rows}

"""How often the demo data sends patients to the emergency room and to hospital.

    .venv/bin/python bench/encounter_rates.py --patients 300 --seed 2026 --today 2026-12-05

Seeds a fresh temporary embedded database (never `.smarthealth/`) and prints, computed in SQL:
the share of patients with at least one emergency visit, of adults with at least one
hospitalisation over the five-year history, per age band, the length of stay and the hour of
emergency visits.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database

RATES_SQL = """
WITH p AS (
  SELECT p.patient_id,
         extract(year FROM age($1::date, p.birth_date))::int AS age,
         (SELECT count(*) FROM smart_health.medical_records r
           WHERE r.patient_id = p.patient_id AND r.record_type = 'Urgencias') AS er,
         (SELECT count(*) FROM smart_health.medical_records r
           WHERE r.patient_id = p.patient_id AND r.record_type = 'Hospitalización') AS hosp
  FROM smart_health.patients p
)
SELECT CASE WHEN age < 18 THEN '0-17' WHEN age < 40 THEN '18-39' WHEN age < 60 THEN '40-59'
            WHEN age < 80 THEN '60-79' ELSE '80+' END AS band,
       count(*) AS patients,
       count(*) FILTER (WHERE er > 0) AS with_er,
       count(*) FILTER (WHERE hosp > 0) AS with_hosp,
       sum(er) AS er_visits,
       sum(hosp) AS hospitalisations
FROM p GROUP BY 1 ORDER BY 1
"""
STAY_SQL = """
SELECT ((discharge_datetime AT TIME ZONE 'America/Bogota')::date
        - (registration_datetime AT TIME ZONE 'America/Bogota')::date) AS days, count(*) AS n
FROM smart_health.medical_records WHERE record_type = 'Hospitalización' GROUP BY 1 ORDER BY 1
"""
HOUR_SQL = """
SELECT extract(hour FROM registration_datetime AT TIME ZONE 'America/Bogota')::int / 6 AS q,
       count(*) AS n
FROM smart_health.medical_records WHERE record_type = 'Urgencias' GROUP BY 1 ORDER BY 1
"""
ADMITTED_FOR_SQL = """
SELECT g.icd_code || ' ' || g.description AS diagnosis, count(*) AS n
FROM smart_health.medical_records r
JOIN smart_health.record_diagnoses d
  ON d.medical_record_id = r.medical_record_id AND d.diagnosis_type = 'Principal'
JOIN smart_health.diagnoses g USING (diagnosis_id)
WHERE r.record_type = 'Hospitalización' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 25
"""


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


async def measure(url: str, today: dt.date) -> dict[str, Any]:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        bands = [dict(r) for r in await conn.fetch(RATES_SQL, today)]
        stays = {str(r["days"]): r["n"] for r in await conn.fetch(STAY_SQL)}
        hours = {
            f"{6 * r['q']:02d}-{6 * r['q'] + 5:02d} h": r["n"] for r in await conn.fetch(HOUR_SQL)
        }
        admitted_for = {r["diagnosis"]: r["n"] for r in await conn.fetch(ADMITTED_FOR_SQL)}
    finally:
        await conn.close()
    adults = [b for b in bands if b["band"] != "0-17"]
    total = sum(b["patients"] for b in bands)
    adult_total = sum(b["patients"] for b in adults)
    return {
        "patients_with_emergency_visit_pct": _pct(sum(b["with_er"] for b in bands), total),
        "adults_with_emergency_visit_pct": _pct(sum(b["with_er"] for b in adults), adult_total),
        "adults_with_hospitalisation_pct": _pct(sum(b["with_hosp"] for b in adults), adult_total),
        "patients_with_hospitalisation_pct": _pct(sum(b["with_hosp"] for b in bands), total),
        "by_age_band": {
            b["band"]: {
                "patients": b["patients"],
                "emergency_pct": _pct(b["with_er"], b["patients"]),
                "hospitalised_pct": _pct(b["with_hosp"], b["patients"]),
                "emergency_visits": int(b["er_visits"]),
                "hospitalisations": int(b["hospitalisations"]),
            }
            for b in bands
        },
        "length_of_stay_days": stays,
        "emergency_visits_by_hour_bogota": hours,
        "hospitalised_for": admitted_for,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sh-rates-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pgdata").start()
        try:
            url = to_asyncpg_url(server.url())
            migrate.upgrade(url)
            asyncio.run(seed_database(url, args.patients, args.seed, today=args.today))
            result = asyncio.run(measure(url, args.today))
        finally:
            server.stop()
    result = {
        "patients": args.patients,
        "seed": args.seed,
        "today": args.today.isoformat(),
        **result,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

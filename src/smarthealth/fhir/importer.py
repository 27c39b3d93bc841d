"""`smarthealth import fhir` and `POST /fhir/import`: FHIR R4 resources → SmartHealth rows.

One patient is one transaction: every resource about a patient is written together, or, when
one of them is invalid or refused by the database, none is and the error is reported with its
file, entry index, resource id and field; the other patients are imported. Practitioners,
medications and diagnoses of other code systems are written in the transaction of the first
patient that needs them. The indexer's triggers queue each imported patient for chunking.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from smarthealth.fhir import codes, mapping
from smarthealth.fhir.identity import DOCUMENT_TYPES, document_of, spanish_name
from smarthealth.fhir.mapping import MappingError
from smarthealth.fhir.parse import Entry, InputFileError, Issue, entries_of, validate
from smarthealth.fhir.refs import ReferenceIndex, external_id, reference_of
from smarthealth.fhir.store import Known, RowStore, S

IMPORTED_TYPES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Medication",
    "Appointment",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Immunization",
    "Procedure",
    "DocumentReference",
)
# Within one patient: what later resources refer to comes first.
ORDER = {
    kind: i
    for i, kind in enumerate(
        (
            "Appointment",
            "Encounter",
            "Condition",
            "AllergyIntolerance",
            "MedicationRequest",
            "MedicationStatement",
            "Observation",
            "Immunization",
            "Procedure",
            "DocumentReference",
        )
    )
}
SHARED_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Medication")
UNKNOWN_DOCTOR_LICENSE = "SIN-REGISTRO"


@dataclass
class ImportReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    patients_imported: int = 0
    patients_failed: int = 0
    patients_skipped: int = 0
    resources: Counter[str] = field(default_factory=Counter)  # read, by type
    skipped: Counter[str] = field(default_factory=Counter)  # not imported, by type
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(n for (_, action), n in self.rows.items() if action != "unchanged")

    @property
    def failed(self) -> bool:
        return self.patients_failed > 0 or any(i.code != "SKIPPED" for i in self.issues)

    def as_dict(self) -> dict[str, Any]:
        tables: dict[str, dict[str, int]] = defaultdict(dict)
        for (table, action), n in sorted(self.rows.items()):
            tables[table][action] = n
        return {
            "files": self.files,
            "patients": {
                "imported": self.patients_imported,
                "failed": self.patients_failed,
                "skipped": self.patients_skipped,
            },
            "resources": dict(sorted(self.resources.items())),
            "skipped_by_type": dict(sorted(self.skipped.items())),
            "rows": dict(tables),
            "rows_changed": self.changed,
            "issues": [i.as_dict() for i in self.issues],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ImportOptions:
    identifier_systems: dict[str, str] = field(default_factory=dict)
    today: dt.date | None = None


def _setting(value: str) -> str:
    return value if value in ("on", "off", "local", "remote_write", "remote_apply") else "on"


class _Failed(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.code)
        self.issue = issue


def read_inputs(inputs: list[tuple[str, bytes]], report: ImportReport) -> list[Entry]:
    """Every resource of every input, each file's digest recorded; unreadable files reported."""
    entries: list[Entry] = []
    for name, data in inputs:
        report.files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest()})
        try:
            entries.extend(entries_of(name, data))
        except InputFileError as exc:
            report.issues.append(exc.issue)
    return entries


def _issue(entry: Entry, code: str, message: str, field_name: str | None = None) -> Issue:
    return Issue(code, message, entry.file, entry.index, entry.resource_type, entry.id, field_name)


MESSAGES = {
    "MISSING_FIELD": "Falta un dato obligatorio.",
    "INVALID_VALUE": "Un dato no tiene un valor válido.",
    "REFERENCE_NOT_FOUND": "Una referencia no se encontró en los datos importados.",
    "DATABASE_REJECTED": "La base de datos rechazó el registro (una restricción no se cumple).",
    "NOT_STORABLE": "Al recurso le falta un dato que SmartHealth necesita para guardarlo; "
    "no se importa.",
    "PATIENT_INCOMPLETE": "Al paciente le falta el nombre o la fecha de nacimiento; no se importa.",
}


class Importer:
    def __init__(
        self,
        conn: asyncpg.Connection,
        options: ImportOptions | None = None,
        on_patient: Callable[[int], None] | None = None,
    ) -> None:
        self.conn = conn
        self.options = options or ImportOptions()
        self.on_patient = on_patient or (lambda n: None)
        self.report = ImportReport()
        self.catalog_medications: dict[str, int] = {}  # "ATC|strength|form" and "ATC" → id
        self.catalog_diagnoses: dict[str, int] = {}
        self.specialties: dict[str, int] = {}
        self.specialty_names: dict[str, int] = {}
        # Across patients, what committed transactions wrote or found: the mappings of shared
        # resources (practitioners), and local ids by code ("medication", system, code) …
        self.shared_known: dict[tuple[str, str], Known] = {}
        self.codes: dict[tuple[str, ...], int] = {}
        self.roles: dict[str, list[Entry]] | None = None  # PractitionerRoles by practitioner

    async def _load_catalogs(self) -> None:
        for r in await self.conn.fetch(
            f"SELECT medication_id, atc_code, strength, form FROM {S}.medications "
            "WHERE atc_code IS NOT NULL ORDER BY medication_id"
        ):
            self.catalog_medications[f"{r['atc_code']}|{r['strength']}|{r['form']}"] = r[0]
            self.catalog_medications.setdefault(r["atc_code"], r[0])
        for r in await self.conn.fetch(
            f"SELECT diagnosis_id, icd_code FROM {S}.diagnoses WHERE icd_code IS NOT NULL"
        ):
            self.catalog_diagnoses[r["icd_code"]] = r[0]
        for r in await self.conn.fetch(f"SELECT specialty_id, code, name FROM {S}.specialties"):
            self.specialties[r["code"]] = r[0]
            self.specialty_names[r["name"].lower()] = r[0]

    async def run(self, inputs: list[tuple[str, bytes]]) -> ImportReport:
        started = time.perf_counter()
        entries = read_inputs(inputs, self.report)
        await self._load_catalogs()
        index = ReferenceIndex(entries)
        groups: dict[str, list[Entry]] = defaultdict(list)
        patients: dict[str, Entry] = {}
        for entry in entries:
            kind = entry.resource_type
            self.report.resources[kind] += 1
            if kind not in IMPORTED_TYPES:
                self.report.skipped[kind or "(sin tipo)"] += 1
                continue
            if kind in SHARED_TYPES:
                continue  # written when a patient's resource refers to it
            if not (entry.id or entry.full_url):
                self.report.issues.append(
                    _issue(entry, "MISSING_FIELD", "El recurso no tiene id ni fullUrl.", "id")
                )
                continue
            if kind == "Patient":
                key = f"{kind}/{external_id(entry)}"
                patients[key] = entry
                groups.setdefault(key, [])
                continue
            target = index.resolve(index.patient_reference(entry), entry)
            if target is None or target.resource_type != "Patient":
                reference = index.patient_reference(entry)
                if reference and reference.startswith("Patient/"):
                    groups[reference].append(entry)  # a patient imported before (bulk files)
                    continue
                self.report.skipped[kind] += 1
                self.report.issues.append(
                    _issue(entry, "SKIPPED", "El recurso no se refiere a un paciente.", "subject")
                )
                continue
            groups[f"Patient/{external_id(target)}"].append(entry)
        # An import can be run again (it is idempotent): a crash may lose the last patients'
        # commits but never leaves one half-written, so commits need not wait for the disk.
        previous = await self.conn.fetchval("SHOW synchronous_commit")
        await self.conn.execute("SET synchronous_commit TO off")
        try:
            for key, members in groups.items():
                await self._patient(key, patients.get(key), members, index)
                self.on_patient(1)
        finally:
            await self.conn.execute(f"SET synchronous_commit TO {_setting(previous)}")
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def _patient(
        self, key: str, patient: Entry | None, members: list[Entry], index: ReferenceIndex
    ) -> None:
        everything = ([patient] if patient else []) + members
        rows: Counter[tuple[str, str]] = Counter()
        job = _PatientImport(self, index, RowStore(self.conn, rows, self.shared_known))
        await job.store.prefetch(everything)
        for entry in everything:
            if job.store.imported_before(entry):
                continue  # this exact resource was valid when it was imported
            problem = validate(entry)
            if problem is not None:
                self.report.patients_failed += 1
                self.report.issues.append(problem)
                return
        try:
            async with self.conn.transaction():
                if patient is not None:
                    patient_id = await job.patient(patient)
                    if patient_id is None:
                        self.report.patients_skipped += 1
                        return
                else:
                    found = await self.conn.fetchval(
                        f"SELECT local_id FROM {S}.fhir_external_ids "
                        "WHERE resource_type = 'Patient' AND external_id = $1",
                        key.split("/", 1)[1],
                    )
                    if found is None:
                        self.report.patients_failed += 1
                        first = members[0]
                        self.report.issues.append(
                            _issue(
                                first,
                                "REFERENCE_NOT_FOUND",
                                MESSAGES["REFERENCE_NOT_FOUND"],
                                "subject",
                            )
                        )
                        return
                    patient_id = int(found)
                job.patient_id = patient_id
                for entry in sorted(members, key=lambda e: ORDER.get(e.resource_type, 99)):
                    await job.resource(entry)
                await job.finish()
        except _Failed as exc:
            self.report.patients_failed += 1
            self.report.issues.append(exc.issue)
            return
        # committed: what this patient wrote of shared rows serves the next patients
        self.codes.update(job.codes)
        for shared, known in job.store.known.items():
            if shared[0] in SHARED_TYPES:
                self.shared_known[shared] = known
        self.report.rows.update(rows)
        self.report.issues.extend(job.notes)
        self.report.skipped.update(job.skipped)
        self.report.patients_imported += 1


class _PatientImport:
    """The resources of one patient, written in one transaction."""

    def __init__(self, importer: Importer, index: ReferenceIndex, store: RowStore) -> None:
        self.importer = importer
        self.index = index
        self.store = store
        self.conn = importer.conn
        self.patient_id = 0
        self.birth_date: dt.date | None = None
        self.notes: list[Issue] = []
        self.skipped: Counter[str] = Counter()
        self.conditions: dict[str, int] = {}  # Condition external id → diagnosis_id
        self.first_diagnosis: set[int] = set()  # records that already have a principal one
        self.new_records: set[int] = set()  # medical records inserted by this transaction
        # what vital-sign Observations and notes set on a record: one UPDATE per record
        self.record_values: dict[int, dict[str, Any]] = defaultdict(dict)
        self.codes: dict[tuple[str, ...], int] = {}  # found or written here; kept on commit

    async def finish(self) -> None:
        """The writes kept for the end of the patient's transaction."""
        for record, values in self.record_values.items():
            await self.store.update("medical_records", "medical_record_id", record, values)
        await self.store.flush()

    def _code(self, key: tuple[str, ...]) -> int | None:
        found = self.codes.get(key)
        return found if found is not None else self.importer.codes.get(key)

    # -- helpers ------------------------------------------------------------------------------

    def _fail(self, entry: Entry, code: str, field_name: str | None) -> _Failed:
        return _Failed(
            _issue(entry, code, MESSAGES.get(code, MESSAGES["INVALID_VALUE"]), field_name)
        )

    async def resource(self, entry: Entry) -> None:
        handler = getattr(self, "_" + entry.resource_type.lower())
        try:
            await handler(entry)
        except MappingError as exc:
            if exc.code != "MISSING_FIELD":
                raise self._fail(entry, exc.code, exc.field) from None
            # Valid R4 (the field is optional there) but SmartHealth cannot hold it without
            # this field (an Encounter without a start, a Condition coded only as text…):
            # the resource is reported and skipped; the rest of the patient is imported. (What
            # a handler may have written before, a code-system diagnosis or medication, is
            # catalog data other resources may use.)
            self._skip(entry, MESSAGES["NOT_STORABLE"], exc.field)
        except asyncpg.PostgresError as exc:
            where = getattr(exc, "constraint_name", None) or getattr(exc, "column_name", None)
            raise self._fail(entry, "DATABASE_REJECTED", where) from None

    def _skip(self, entry: Entry, message: str, field_name: str | None = None) -> None:
        self.skipped[entry.resource_type] += 1
        self.notes.append(_issue(entry, "SKIPPED", message, field_name))

    async def _local(self, reference: Any, holder: Entry, table: str) -> int | None:
        """The local id of the row a referenced resource became (imported earlier)."""
        target = self.index.resolve(reference_of(reference), holder)
        if target is None:
            return None
        known = self.store.lookup(target)
        if known is None:
            await self.store.prefetch([target])
            known = self.store.lookup(target)
        return known.local_id if known and known.local_table == table else None

    async def _record(self, entry: Entry) -> int | None:
        field_name = "context" if entry.resource_type == "DocumentReference" else "encounter"
        holder = entry.resource.get(field_name) or {}
        if entry.resource_type == "DocumentReference":
            refs = holder.get("encounter") or []
            reference = refs[0] if refs else None
        else:
            reference = holder
        return await self._local(reference, entry, "medical_records")

    # -- patient ------------------------------------------------------------------------------

    async def patient(self, entry: Entry) -> int | None:
        resource = entry.resource
        document = document_of(
            resource, self.importer.options.identifier_systems, self.importer.options.today
        )
        if document is None:
            self.importer.report.issues.append(
                _issue(
                    entry,
                    "NO_DOCUMENT",
                    "El paciente no tiene un identificador que corresponda a un tipo de "
                    "documento colombiano; no se importa.",
                    "identifier",
                )
            )
            return None
        known = self.store.unchanged(entry)
        if known is not None:
            return known
        name = spanish_name(resource)
        missing = "name" if name is None else None if resource.get("birthDate") else "birthDate"
        if name is None or missing:
            # Valid R4 (both are optional there), but a chart needs them: reported, skipped.
            self.importer.report.issues.append(
                _issue(entry, "PATIENT_INCOMPLETE", MESSAGES["PATIENT_INCOMPLETE"], missing)
            )
            return None
        try:
            birth = mapping.local_date(resource.get("birthDate"), "birthDate")
        except MappingError as exc:
            raise self._fail(entry, exc.code, exc.field) from None
        values = {
            "document_type_id": DOCUMENT_TYPES[document.type_code],
            "document_number": document.number,
            "first_name": name.first_name,
            "middle_name": name.middle_name,
            "first_surname": name.first_surname,
            "second_surname": name.second_surname,
            "birth_date": birth,
            "gender": mapping.gender(resource.get("gender")),
            **mapping.contact(resource),
        }
        existing = await self.conn.fetchval(
            f"SELECT patient_id FROM {S}.patients WHERE document_type_id = $1 "
            "AND document_number = $2",
            values["document_type_id"],
            document.number,
        )
        try:
            patient_id = await self.store.write(
                entry, "patients", "patient_id", values, None, existing_id=existing
            )
        except asyncpg.PostgresError as exc:
            raise self._fail(
                entry, "DATABASE_REJECTED", getattr(exc, "constraint_name", None)
            ) from None
        self.store.set_patient(entry, patient_id)
        return patient_id

    # -- shared: doctors, medications, diagnoses ----------------------------------------------

    async def organization(self, reference: Any, holder: Entry) -> int | None:
        """The organization a reference names (an Organization's `name`, else the reference's
        `display`), found or added by name; None when it names none."""
        if not isinstance(reference, dict):
            return None
        target = self.index.resolve(reference_of(reference), holder)
        name = target.resource.get("name") if target is not None else None
        if target is not None and target.resource_type != "Organization":
            name = None
        name = str(name or reference.get("display") or "").strip()[:200]
        if not name:
            return None
        found = await self.conn.fetchval(
            f"SELECT organization_id FROM {S}.organizations WHERE name = $1", name
        )
        if found is None:
            found = await self.conn.fetchval(
                f"INSERT INTO {S}.organizations (name) VALUES ($1) "
                "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING organization_id",
                name,
            )
            self.store.rows[("organizations", "inserted")] += 1
        return int(found)

    async def doctor(self, reference: Any, holder: Entry) -> int:
        target = self.index.resolve(reference_of(reference), holder)
        if target is not None and target.resource_type == "PractitionerRole":
            role = target
            target = self.index.resolve(reference_of(role.resource.get("practitioner")), role)
        if target is None or target.resource_type != "Practitioner":
            return await self._unknown_doctor()
        await self.store.prefetch([target])
        known = self.store.unchanged(target)
        if known is not None:
            return known
        problem = validate(target)
        if problem is not None:
            raise _Failed(problem)
        resource = target.resource
        license_value = None
        for identifier in resource.get("identifier") or []:
            if identifier.get("system") == codes.LICENSE_SYSTEM and identifier.get("value"):
                license_value = str(identifier["value"])
                break
        if license_value is None:
            ids = [str(i["value"]) for i in resource.get("identifier") or [] if i.get("value")]
            license_value = ids[0] if ids else f"FHIR-{external_id(target)}"
        license_value = license_value[:20]
        names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
        first = last = ""
        if names:
            given = names[0].get("given") or []
            first = str(given[0]) if given else ""
            last = str(names[0].get("family") or "")
        values = {
            "first_name": (first or "Profesional")[:80],
            "last_name": (last or external_id(target))[:80],
            "gender": mapping.gender(resource.get("gender")),
            "medical_license": license_value,
        }
        existing = await self.conn.fetchval(
            f"SELECT doctor_id FROM {S}.doctors WHERE medical_license = $1", license_value
        )
        doctor_id = await self.store.write(
            target, "doctors", "doctor_id", values, None, existing_id=existing
        )
        await self._doctor_specialties(doctor_id, target)
        return doctor_id

    def _roles(self) -> dict[str, list[Entry]]:
        """The PractitionerRoles of this import by their practitioner (built once)."""
        if self.importer.roles is None:
            roles: dict[str, list[Entry]] = defaultdict(list)
            for role in self.index.by_url.values():
                if role.resource_type != "PractitionerRole":
                    continue
                target = self.index.resolve(reference_of(role.resource.get("practitioner")), role)
                if target is not None and role not in roles[external_id(target)]:
                    roles[external_id(target)].append(role)
            self.importer.roles = dict(roles)
        return self.importer.roles

    async def _doctor_specialties(self, doctor_id: int, practitioner: Entry) -> None:
        """Specialties from the PractitionerRoles that name this doctor (SmartHealth's own
        specialty codes, or a display equal to a specialty's name)."""
        for role in self._roles().get(external_id(practitioner), []):
            for position, concept in enumerate(role.resource.get("specialty") or []):
                specialty = self._specialty(concept)
                if specialty is not None:
                    await self.conn.execute(
                        f"INSERT INTO {S}.doctor_specialties (doctor_id, specialty_id, "
                        "is_primary) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        doctor_id,
                        specialty,
                        position == 0,
                    )

    def _specialty(self, concept: Any) -> int | None:
        own = mapping.coding_in(concept, codes.SPECIALTY_SYSTEM)
        if own and own in self.importer.specialties:
            return self.importer.specialties[own]
        text = mapping.text_of(concept)
        return self.importer.specialty_names.get(text.lower()) if text else None

    async def _unknown_doctor(self) -> int:
        key = ("doctor", UNKNOWN_DOCTOR_LICENSE)
        found = self._code(key)
        if found is None:
            found = await self.conn.fetchval(
                f"SELECT doctor_id FROM {S}.doctors WHERE medical_license = $1",
                UNKNOWN_DOCTOR_LICENSE,
            )
        if found is None:
            found = await self.conn.fetchval(
                f"INSERT INTO {S}.doctors (first_name, last_name, gender, medical_license) "
                "VALUES ('Profesional', 'no registrado', 'O', $1) RETURNING doctor_id",
                UNKNOWN_DOCTOR_LICENSE,
            )
        self.codes[key] = int(found)
        return int(found)

    async def medication(self, resource: dict[str, Any], holder: Entry) -> int:
        concept = resource.get("medicationCodeableConcept")
        if concept is None and resource.get("medicationReference"):
            target = self.index.resolve(reference_of(resource["medicationReference"]), holder)
            if target is None:
                raise MappingError("medicationReference", "REFERENCE_NOT_FOUND")
            concept = target.resource.get("code")
        return await self._coded_medication(concept, "medication[x]")

    async def _coded_medication(self, concept: Any, field_name: str) -> int:
        catalog = self.importer.catalog_medications
        own = mapping.coding_in(concept, codes.MEDICATION_CATALOG_SYSTEM)
        if own and own in catalog:
            return catalog[own]
        atc = mapping.coding_in(concept, codes.uri("ATC"))
        if atc and atc in catalog:
            return catalog[atc]
        drug = mapping.coded(concept, field_name, prefer=("RxNorm", "CUM", "ATC"))
        key = ("medication", drug.system[:20], drug.code)
        found = self._code(key)
        if found is None:
            found = await self.conn.fetchval(
                f"SELECT medication_id FROM {S}.medications WHERE code_system = $1 AND code = $2",
                drug.system[:20],
                drug.code,
            )
        if found is not None:
            self.codes[key] = int(found)
            return int(found)
        name = drug.display[:120]
        self.store.rows[("medications", "inserted")] += 1
        self.codes[key] = int(
            await self.conn.fetchval(
                f"INSERT INTO {S}.medications (atc_code, commercial_name, active_ingredient, "
                "strength, form, presentation, therapeutic_class, route, default_dose, "
                "default_frequency, default_duration_days, code_system, code, display) "
                "VALUES (NULL, $1, $2, '', '', '', '', '', '', '', 30, $3, $4, $5) "
                "RETURNING medication_id",
                name,
                drug.display[:160],
                drug.system[:20],
                drug.code,
                drug.display,
            )
        )
        return self.codes[key]

    async def diagnosis(self, concept: Any, field_name: str) -> int:
        icd = mapping.icd10(concept)
        if icd is not None:
            code, description = icd
            found = self.importer.catalog_diagnoses.get(code) or self._code(("icd", code))
            if found is not None:
                return found
            row = await self.conn.fetchrow(
                f"INSERT INTO {S}.diagnoses (icd_code, description) VALUES ($1, $2) "
                "ON CONFLICT (icd_code) DO UPDATE SET icd_code = EXCLUDED.icd_code "
                "RETURNING diagnosis_id, xmax = 0 AS inserted",
                code,
                description,
            )
            if row["inserted"]:
                self.store.rows[("diagnoses", "inserted")] += 1
            self.codes[("icd", code)] = int(row["diagnosis_id"])
            return int(row["diagnosis_id"])
        condition = mapping.coded(concept, field_name, prefer=("SNOMED CT",))
        system = condition.system[:20]
        key = ("diagnosis", system, condition.code)
        found = self._code(key)
        if found is None:
            found = await self.conn.fetchval(
                f"SELECT diagnosis_id FROM {S}.diagnoses WHERE code_system = $1 AND code = $2",
                system,
                condition.code,
            )
        if found is not None:
            self.codes[key] = int(found)
            return int(found)
        self.store.rows[("diagnoses", "inserted")] += 1
        self.codes[key] = int(
            await self.conn.fetchval(
                f"INSERT INTO {S}.diagnoses (icd_code, description, code_system, code, display) "
                "VALUES (NULL, $1, $2, $3, $4) RETURNING diagnosis_id",
                condition.display,
                system,
                condition.code,
                condition.display,
            )
        )
        return self.codes[key]

    # -- patient-scoped resources ------------------------------------------------------------

    async def _appointment(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        if not r.get("start") or not r.get("end"):
            self._skip(entry, "La cita no tiene inicio y fin.", "start")
            return
        doctor = None
        for participant in r.get("participant") or []:
            ref = reference_of((participant or {}).get("actor")) or ""
            if "Practitioner" in ref:
                doctor = await self.doctor(participant["actor"], entry)
                break
        doctor = doctor or await self._unknown_doctor()
        specialty = None
        for concept in (r.get("specialty") or []) + (r.get("serviceType") or []):
            specialty = self._specialty(concept)
            if specialty:
                break
        if specialty is None:
            specialty = await self.conn.fetchval(
                f"SELECT specialty_id FROM {S}.doctor_specialties WHERE doctor_id = $1 "
                "ORDER BY is_primary DESC, specialty_id LIMIT 1",
                doctor,
            ) or self.importer.specialties.get("MED_GENERAL")
        status = None
        for tag in (r.get("meta") or {}).get("tag") or []:
            if tag.get("system") == codes.APPOINTMENT_STATUS_SYSTEM:
                status = tag.get("code")
        reason = mapping.text_of((r.get("reasonCode") or [None])[0]) or r.get("description")
        values = {
            "patient_id": self.patient_id,
            "doctor_id": doctor,
            "specialty_id": specialty,
            "start_time": mapping.instant(r["start"], "start"),
            "end_time": mapping.instant(r["end"], "end"),
            "status": status or mapping.APPOINTMENT_STATUS.get(str(r.get("status")), "Scheduled"),
            "reason": reason,
        }
        await self.store.write(entry, "appointments", "appointment_id", values, self.patient_id)

    async def _encounter(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        period = r.get("period") or {}
        start = mapping.instant(period.get("start"), "period.start")
        kind = mapping.record_type(r)
        discharge = None
        if kind == "Hospitalización" and period.get("end"):
            end = mapping.instant(period["end"], "period.end")
            discharge = end if end > start else None
        doctor = None
        for participant in r.get("participant") or []:
            if (participant or {}).get("individual"):
                doctor = await self.doctor(participant["individual"], entry)
                break
        appointments = r.get("appointment") or []
        appointment = (
            await self._local(appointments[0], entry, "appointments") if appointments else None
        )
        values = {
            "patient_id": self.patient_id,
            "doctor_id": doctor or await self._unknown_doctor(),
            "appointment_id": appointment,
            "organization_id": await self.organization(r.get("serviceProvider"), entry),
            "record_type": kind,
            "registration_datetime": start,
            "discharge_datetime": discharge,
        }
        new = self.store.lookup(entry) is None
        record = await self.store.write(
            entry,
            "medical_records",
            "medical_record_id",
            values,
            self.patient_id,
            insert_only={"summary_text": ""},
        )
        if new:
            self.new_records.add(record)

    async def _condition(self, entry: Entry) -> None:
        known = self.store.unchanged(entry)
        if known is not None:
            self.conditions[external_id(entry)] = await self.conn.fetchval(
                f"SELECT diagnosis_id FROM {S}.record_diagnoses WHERE record_diagnosis_id = $1",
                known,
            )
            return
        r = entry.resource
        diagnosis_id = await self.diagnosis(r.get("code"), "code")
        record = await self._record(entry)
        kind = "Secondary"
        verification = mapping.codings(r.get("verificationStatus"))
        own_kind = mapping.coding_in(
            (r.get("category") or [None])[0] if r.get("category") else None,
            codes.DIAGNOSIS_KIND_SYSTEM,
        )
        if own_kind:
            kind = own_kind
        elif verification and verification[0].get("code") == "differential":
            kind = "Differential"
        elif record is None or record not in self.first_diagnosis:
            kind = "Principal"
        if record is not None and kind == "Principal":
            self.first_diagnosis.add(record)
        status = mapping.codings(r.get("clinicalStatus"))
        onset = r.get("onsetDateTime") or (r.get("onsetPeriod") or {}).get("start")
        abatement = r.get("abatementDateTime") or (r.get("abatementPeriod") or {}).get("end")
        values = {
            "medical_record_id": record,
            "patient_id": self.patient_id,
            "diagnosis_id": diagnosis_id,
            "diagnosis_type": kind,
            "clinical_status": str(status[0]["code"])[:20] if status else None,
            "onset_date": mapping.local_date(onset, "onset[x]") if onset else None,
            "abatement_date": mapping.local_date(abatement, "abatement[x]") if abatement else None,
        }
        existing = None
        if record is not None and record not in self.new_records:  # a new record has none
            existing = await self.conn.fetchval(
                f"SELECT record_diagnosis_id FROM {S}.record_diagnoses "
                "WHERE medical_record_id = $1 AND diagnosis_id = $2",
                record,
                diagnosis_id,
            )
        await self.store.write(
            entry,
            "record_diagnoses",
            "record_diagnosis_id",
            values,
            self.patient_id,
            existing_id=existing,
        )
        self.conditions[external_id(entry)] = diagnosis_id

    async def _allergyintolerance(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        concept = r.get("code")
        categories = [str(c) for c in r.get("category") or []]
        catalog = self.importer.catalog_medications
        medication_id = None
        own = mapping.coding_in(concept, codes.MEDICATION_CATALOG_SYSTEM)
        atc = mapping.coding_in(concept, codes.uri("ATC"))
        if own and own in catalog:
            medication_id = catalog[own]
        elif atc and atc in catalog and categories in ([], ["medication"]):
            medication_id = catalog[atc]
        substance = coded = None
        if medication_id is None:
            coded = mapping.coded(concept, "code") if mapping.codings(concept) else None
            substance = mapping.text_of(concept)
            if substance is None:
                raise MappingError("code")
        drug_systems = {"RxNorm", "ATC", "NDC", "CUM"}
        category = categories[0] if categories else None
        if category is None:
            category = (
                "medication"
                if medication_id or (coded and coded.system in drug_systems)
                else "environment"
            )
        reaction, severity = mapping.reactions(r)
        noted = (
            r.get("recordedDate")
            or r.get("onsetDateTime")
            or (r.get("onsetPeriod") or {}).get("start")
        )
        values = {
            "patient_id": self.patient_id,
            "medication_id": medication_id,
            "reaction": reaction[:200] if reaction else None,
            "severity": severity,
            "noted_on": mapping.local_date(noted, "recordedDate") if noted else dt.date.today(),
            "substance": substance[:200] if substance else None,
            "substance_code": coded.code if coded else None,
            "substance_system": coded.system if coded else None,
            "category": category
            if category in ("medication", "food", "environment", "biologic")
            else "environment",
            "criticality": r.get("criticality"),
        }
        existing = None
        if medication_id is not None:
            existing = await self.conn.fetchval(
                f"SELECT allergy_id FROM {S}.patient_allergies WHERE patient_id = $1 "
                "AND medication_id = $2",
                self.patient_id,
                medication_id,
            )
        await self.store.write(
            entry, "patient_allergies", "allergy_id", values, self.patient_id, existing_id=existing
        )

    async def _medicationrequest(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        medication_id = await self.medication(r, entry)
        dose, frequency, instruction, duration = mapping.dosage(r)
        if r["resourceType"] == "MedicationRequest":
            started = mapping.first_instant(r, "authoredOn", "dispenseRequest.validityPeriod.start")
        else:
            started = mapping.first_instant(
                r, "effectiveDateTime", "effectivePeriod.start", "dateAsserted"
            )
        diagnosis_id = None
        for reason in r.get("reasonReference") or []:
            target = self.index.resolve(reference_of(reason), entry)
            if target is not None:
                diagnosis_id = self.conditions.get(external_id(target))
            if diagnosis_id:
                break
        if diagnosis_id is None and r.get("reasonCode"):
            diagnosis_id = await self.diagnosis(r["reasonCode"][0], "reasonCode")
        values = {
            "medical_record_id": await self._record(entry)
            if r["resourceType"] == "MedicationRequest"
            else await self._local(r.get("context"), entry, "medical_records"),
            "patient_id": self.patient_id,
            "medication_id": medication_id,
            "diagnosis_id": diagnosis_id,
            "dosage": dose,
            "frequency": frequency,
            "duration_days": duration or 30,
            "instruction": instruction,
            "prescription_date": started.astimezone(mapping.BOGOTA).date(),
            "status": str(r.get("status"))[:20] if r.get("status") else None,
        }
        await self.store.write(entry, "prescriptions", "prescription_id", values, self.patient_id)

    _medicationstatement = _medicationrequest

    async def _observation(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        blood = mapping.blood_type(r)
        if blood is not None:  # the patient's blood type, not a lab result of its own
            await self.store.update(
                "patients", "patient_id", self.patient_id, {"blood_type": blood}
            )
            self.store.remember(entry, "patients", self.patient_id, self.patient_id)
            return
        record = await self._record(entry)
        vitals = mapping.vital_values(r) if record is not None else None
        if vitals is not None and record is not None:
            self.record_values[record].update(vitals)
            self.store.remember(entry, "medical_records", record, self.patient_id)
            return
        values = {"patient_id": self.patient_id, "medical_record_id": record}
        values.update(mapping.observation_values(r))
        await self.store.write(entry, "observations", "observation_id", values, self.patient_id)

    async def _immunization(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        vaccine = mapping.coded(r.get("vaccineCode"), "vaccineCode", prefer=("CVX",))
        dose = None
        for protocol in r.get("protocolApplied") or []:
            number = protocol.get("doseNumberPositiveInt")
            dose = int(number) if number is not None and int(number) < 32000 else None
        values = {
            "patient_id": self.patient_id,
            "medical_record_id": await self._record(entry),
            "code_system": vaccine.system,
            "code": vaccine.code,
            "display": vaccine.display,
            "occurred_at": mapping.first_instant(r, "occurrenceDateTime", "recorded"),
            "dose_number": dose,
            "lot_number": str(r["lotNumber"])[:40] if r.get("lotNumber") else None,
            "status": str(r.get("status"))[:20] if r.get("status") else None,
        }
        await self.store.write(entry, "immunizations", "immunization_id", values, self.patient_id)

    async def _procedure(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        r = entry.resource
        procedure = mapping.coded(r.get("code"), "code", prefer=("SNOMED CT",))
        values = {
            "patient_id": self.patient_id,
            "medical_record_id": await self._record(entry),
            "code_system": procedure.system,
            "code": procedure.code,
            "display": procedure.display,
            "performed_at": mapping.first_instant(r, "performedDateTime", "performedPeriod.start"),
            "status": str(r.get("status"))[:20] if r.get("status") else None,
        }
        await self.store.write(entry, "procedures", "procedure_id", values, self.patient_id)

    async def _documentreference(self, entry: Entry) -> None:
        if self.store.unchanged(entry) is not None:
            return
        note = mapping.plain_text_note(entry.resource)
        if note is None:
            self._skip(entry, "El documento no tiene texto plano incluido.", "content")
            return
        record = await self._record(entry)
        if record is None:
            self._skip(entry, "El documento no está asociado a una atención.", "context")
            return
        self.record_values[record]["summary_text"] = note
        self.store.remember(entry, "medical_records", record, self.patient_id)


async def import_fhir(
    conn: asyncpg.Connection,
    inputs: list[tuple[str, bytes]],
    options: ImportOptions | None = None,
    on_patient: Callable[[int], None] | None = None,
) -> ImportReport:
    return await Importer(conn, options, on_patient).run(inputs)

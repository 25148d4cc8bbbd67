"""The pure sync engine. Stdlib + phonenumbers + email-validator only: no Flask, no models,
no redis, no HTTP.

Modules and their public names
------------------------------
``sync.ids``       ``to_18(id) -> str`` (15 -> 18, case intact; raises ``InvalidRecordId``),
                   ``checksum(id15) -> str``, ``is_valid_id(value) -> bool``.
``sync.paths``     ``get_path(record, "Account.Name")`` -> scalar or None (null parent -> None),
                   ``get_text(record, path)``, ``first_text(record, paths) -> (path, text)``.
``sync.validate``  ``normalize_email(raw) -> EmailResult(raw, email, flag; .key, .valid)``,
                   ``normalize_phone(raw, region) -> PhoneResult(raw, e164, extension, region,
                   flag; .key, .valid)``, ``region_for_country(value)``,
                   ``phone_region(country, default_region)``, ``email_key``, ``phone_key``,
                   ``check_record(mapped, required, default_region) -> CheckedRecord``,
                   ``Flag(code, field, raw, reason)``; codes ``INVALID_EMAIL``,
                   ``INVALID_PHONE``, ``MISSING_REQUIRED``, ``NO_CONTACT_POINT``.
``sync.plan``      frozen ``Plan(org_id, object_name, mapping, consent, action, target_id,
                   invite_confirmation, filters, excluded_ids, default_region, leaving_policy,
                   cursor_field, look_back, plan_id)`` with ``.fingerprint`` and
                   ``.select_fields()``; ``Mapping`` (participant field -> fallback paths,
                   segments, attributes, country, external_id, required); ``ConsentRule``;
                   enums ``Action``, ``LeavingPolicy``, ``Consent``.
``sync.mapping``   ``map_record(plan, record) -> MappedRecord`` (values, ``source_values``,
                   ``source_hash``, ``timestamp``, ``ref``, ``person_refs``);
                   ``SourceRef(org_id, object_name, record_id)``; ``split_multiselect``;
                   ``evaluate_consent(rule, record) -> (Consent, evidence)``.
``sync.identity``  ``PageIdentity(lookup_result)`` with ``resolve(record, email_key,
                   phone_key) -> Resolution`` and ``claim(...)``.
``sync.cursor``    ``parse_datetime``, ``soql_literal``, ``lower_bound``, ``where_clause``,
                   ``order_by``, ``choose_cursor_field``, ``resume_from``, ``newest``,
                   ``advance``, ``DEFAULT_LOOK_BACK``.
``sync.errors``    ``SourceLimitReached``, ``SourceAuthFailed``, ``SourceTransient``,
                   ``SourceBrokenPaging``, ``SourceQueryError(message)`` (all ``SourceError``),
                   ``SinkConflict``.
``sync.sink``      the ports ``Source``, ``Sink``, ``Log`` and the values crossing them.
``sync.engine``    ``run(plan, source, sink, log, *, cursor=None, clock=...) -> RunSummary``.
``sync.memory``    ``MemorySink``: the reference Sink (tests, benchmarks).
``sync.fakes``     ``PagedSource``, ``generated_contacts``, ``ListLog`` for tests/benchmarks.

How a runner uses it (services.runs)
------------------------------------
1. Build the ``Plan`` from the plan rows.
2. ``start = cursor.resume_from(saved_cursor, saved_fingerprint, plan.fingerprint)``; None
   means a full read (first run, or object/mapping/filters/consent/action changed).
3. Build the SOQL (salesforce.soql): ``SELECT <plan.select_fields()> FROM <object>
   WHERE <filters> AND <cursor.where_clause(plan.cursor_field, start, plan.look_back)>
   <cursor.order_by(plan.cursor_field)>``.
4. ``summary = engine.run(plan, source, sink, log, cursor=start)`` and store
   ``summary.status / reason / counts``; ``summary.needs_reconnect`` flags the connection.

Source: any iterable of pages (sequences of Salesforce JSON records), fetched lazily in cursor
order. Iterating raises only ``sync.errors.Source*``; the engine asks for nothing after one.
  * ``SourceLimitReached``  -> ``partial``, reason "Salesforce API daily limit reached; will resume"
  * ``SourceAuthFailed``    -> ``failed``, ``needs_reconnect=True``
  * ``SourceTransient``     -> ``partial`` if a page was committed, else ``failed``
                               ("Salesforce unavailable: ...")
  * ``SourceBrokenPaging``  -> ``failed`` (never succeeded); ``SourceQueryError`` -> ``failed``
                               with Salesforce's message.
  In every case the cursor stays at the newest timestamp of the last committed page.

Sink (one per workspace and run; the database sink executes each call in one transaction):
  * ``lookup(Lookup(refs, email_keys, phone_keys, invite_target)) -> LookupResult(links,
    participants, by_email, by_phone, suppressed_email_keys)``. Called at most twice per
    page, both batched: first by source refs (every record's own ref plus the refs naming the
    same person); then, only for records whose source hash changed, by email and phone keys.
  * ``commit_page(PageChanges) -> {NewParticipantRef: participant id}``: creates, updates
    (None values mean "leave as is"), source links (hash, timestamp, flags), departures
    (deleted / merged / opted out, with the plan's leaving policy), invitations (with the
    consent value and evidence seen and the confirmation relied on), one outcome per record,
    the page's counters, and the new cursor with the plan fingerprint it belongs to. Raises
    ``SinkConflict`` after rolling back if a workspace uniqueness rule (unique email key, one
    link per record) refuses the page; the engine looks the page up again and retries once,
    then ends the run ``failed``.

Log: ``event(message, *, level="info", **data)`` for run-level lines (page committed, stopped
and why). Per-record outcomes go through the sink, in the page's transaction.

Outcomes (``sync.sink``): imported, updated, unchanged, excluded_in_preview, skipped, failed;
``invited`` is counted in addition for records that got an invitation. Run statuses from the
engine: succeeded, partial, failed (interrupted and skipped are the runner's).
"""

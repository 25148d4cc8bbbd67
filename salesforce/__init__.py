"""The Salesforce client layer: plain Python (no Flask, no models, no sync/ or services/).

Import from the submodules; this package re-exports nothing so importing it stays cheap.

salesforce.errors — every failure classified once
    SalesforceError(message="", *, code=None, status=None, reason=None, retryable=None)
        .code (Salesforce errorCode or synthetic: TIMEOUT, CONNECTION_ERROR, TLS_ERROR, HTTP_503,
        INVALID_RESPONSE...), .reason (researcher-readable), .message (Salesforce's text),
        .status (HTTP), .kind (stable slug), .retryable
    subclasses: SessionExpired (401), NeedsReconnect (refresh refused: invalid_grant, inactive
        user/org), ApiLimitExceeded (403 REQUEST_LIMIT_EXCEEDED; reason is exactly "Salesforce API
        daily limit reached; will resume"), ApiDisabled (API_DISABLED_FOR_ORG /
        API_CURRENTLY_DISABLED), Transient (5xx, SERVER_UNAVAILABLE, QUERY_TIMEOUT, timeouts,
        connection errors, HTML error pages; retryable), QueryLocatorInvalid
        (INVALID_QUERY_LOCATOR: restart from the cursor), BrokenPaging (done:false without
        nextRecordsUrl, a page that never arrived, a cut-off or non-JSON body), MalformedQuery
        (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR...; keeps
        Salesforce's message), AccessDenied (INSUFFICIENT_ACCESS*, other 403), NotFound (404),
        OAuthFailed (token endpoint: wrong consumer key/secret and the like)
    classify(exc_or_response) -> SalesforceError   (never raises; ours pass through unchanged)

salesforce.hosts — login-host allow-list (checked before any request)
    normalize_login_url(env: "production"|"sandbox"|"mydomain", mydomain_url=None, extra_hosts=())
        -> "https://host[:port]"; raises LoginHostNotAllowed(ValueError) with a user-facing message.
        extra_hosts: "host" (any port) or "host:port" entries from configuration (the emulator).
    is_allowed_login_url(url, extra_hosts=()) -> bool
    check_instance_url(url, extra_hosts=()) -> normalized instance URL (token responses)

salesforce.describe — describe JSON -> frozen dataclasses
    ObjectSummary.from_json(d): name, label, label_plural, custom, queryable, retrieveable,
        layoutable, deprecated_and_hidden, key_prefix, searchable; .discoverable
    FieldInfo.from_json(d): name, label, type, length, nillable, filterable, sortable,
        picklist_values (PicklistValue(value, label, active, default)), reference_to,
        relationship_name, external_id, id_lookup, unique, compound_field_name, custom,
        calculated, deprecated_and_hidden; .is_compound, .is_consent
    ObjectDescribe.from_json(d): name, label, label_plural, custom, key_prefix, fields,
        child_relationships (ChildRelationship(child_object, field, relationship_name));
        .field(name) (case-insensitive), .cursor_field (SystemModstamp else LastModifiedDate),
        .capabilities -> Capabilities(email_fields, phone_fields, consent_fields,
        source_id_fields, last_modified_field; has_email, has_phone, has_consent)
    discoverable_objects(summaries) -> list[ObjectSummary]   (Lead, Contact, CampaignMember,
        Account, other standard, then custom)
    parent_objects(describe) -> {relationship_name: (target objects...)}
    FieldCatalog(describe, parents={"Account": account_describe})  — own fields + parents one
        level up as "Account.Name"; .resolve(path) -> FieldChoice(path, label, field) | None,
        .choices, .filter_choices() (never address/location), .compatible_fields(participant_field)
        for first_name, last_name, email, phone, company, segment, consent, external_id,
        .suggested_mapping() -> {participant_field: path}, .phone_fallbacks()
    is_filterable(field) -> bool

salesforce.soql — pure SOQL building
    escape_literal(s), escape_like(s), quote_literal(s)  (== simple-salesforce format_soql)
    soql_datetime(aware_dt) -> "2024-05-01T00:33:19Z", soql_date(d), to_18_char_id(id15),
    is_record_id(s)
    FilterRow(field_path, operator, value), FilterGroup("AND"|"OR", children)
    operators: equals, not_equals, contains, starts_with, is_empty, is_not_empty, any_of,
        includes, excludes (multipicklist), before, after, last_n_days, less_than, greater_than
        (numbers), in_campaign (value: campaign ID or list; Contact/Lead semi-join,
        CampaignMember plain test); operators_for(field) -> list[str]; OPERATOR_LABELS
    build_where(group, catalog: FieldCatalog) -> str   ("" when empty); raises
        FilterError(row_index, message) — row_index counts rows depth-first from 0
    build_query(object, fields, where="", order_by=None, limit=None) -> str
    build_count_query(object, where="") -> str
    build_incremental_query(object, fields, where, cursor_field, lower_bound: aware datetime |
        SOQL datetime literal | None) -> "SELECT ... FROM X WHERE (filters) AND SystemModstamp >=
        2024-05-01T00:33:19Z ORDER BY SystemModstamp, Id"  (adds Id and the cursor field)
    and_conditions(*conds) -> str; SoqlError for unsafe names/literals

salesforce.client — REST through simple-salesforce (direct session mode)
    make_session(ca_file=None, timeout=(5, 60)) -> requests.Session (trust_env off with a CA file)
    SalesforceClient(instance_url, access_token, *, api_version="62.0", ca_file=None,
                     timeout=(5, 60), token_refresher: Callable[[], str] | None = None,
                     retries=3, backoff=(0.5, 1.0, 2.0), sleep=time.sleep, session=None)
        .describe_global() -> list[ObjectSummary]
        .describe(name) -> ObjectDescribe
        .record_counts(names) -> {name: int | None}   (None = Salesforce keeps no count)
        .count(soql) -> int                            (SELECT COUNT() ... → totalSize)
        .query_pages(soql, *, include_deleted=False, batch_size=2000) -> Iterator[Page]
            Page(records, total_size, done, page_number, next_records_url); lazy; raises
            BrokenPaging / QueryLocatorInvalid / ApiLimitExceeded mid-iteration
        .limits() -> dict, .organization() -> OrgInfo(name, is_sandbox, organization_type),
        .ping() -> True, .create(obj, data) -> id, .update(obj, id, data), .delete(obj, id)
        .api_usage -> (used, max) | None   (from every response's Sforce-Limit-Info, and limits())
        .calls_made -> int (HTTP responses received), .refreshes -> int, .access_token
    Policy: 401 → token_refresher() once, retry once (second 401 / NeedsReconnect propagate);
    REQUEST_LIMIT_EXCEEDED → raised at once, no sleep; retryable errors → `retries` more tries
    with `backoff` sleeps (GET/PATCH/DELETE only, never create); a next page still failing after
    that → BrokenPaging(code="PAGE_NEVER_ARRIVED"). Errors raised are salesforce.errors classes.

salesforce.oauth — web-server flow with authlib (no Flask)
    SCOPE = "api refresh_token id"; PKCE S256; client auth client_secret_post
    endpoints(login_url) -> OAuthEndpoints(authorize_url, token_url, revoke_url, userinfo_url)
    flask_registration(login_url, client_id, client_secret, ca_file=None) -> kwargs for
        authlib's flask OAuth.register(name, **kwargs)
    authorization_request(login_url, client_id, redirect_uri, *, prompt=None)
        -> AuthorizationRequest(url, state, code_verifier, redirect_uri)  (keep state+verifier
        server-side until the callback)
    exchange_code(token_url, client_id, client_secret, code, redirect_uri, code_verifier, *,
                  ca_file=None, timeout=(5, 30)) -> TokenSet
    refresh_access_token(token_url, client_id, client_secret, refresh_token, *, ca_file=None,
                         timeout=(5, 30)) -> TokenSet   (keeps the old refresh token;
                         invalid_grant → NeedsReconnect; 5xx → Transient)
    parse_token_response(data, previous_refresh_token=None) -> TokenSet(access_token,
        refresh_token, instance_url, id_url, org_id, user_id, issued_at: aware datetime,
        scope, token_type)
    revoke(revoke_url, token, *, ca_file=None, timeout=(5, 30)) -> None
    fetch_identity(id_url, access_token, *, ca_file=None, timeout=(5, 30))
        -> Identity(org_id, user_id, username, display_name, email)
    The org name comes from SalesforceClient.organization().

For services adapting the client to sync's Source port (salesforce/ can't import sync/):
    ApiLimitExceeded → SourceLimitReached; NeedsReconnect (and a SessionExpired that survived the
    one refresh) → SourceAuthFailed; Transient → SourceTransient; BrokenPaging → SourceBrokenPaging;
    MalformedQuery → SourceQueryError(err.message); QueryLocatorInvalid → re-run
    build_incremental_query from the last committed cursor; ApiDisabled / AccessDenied / NotFound →
    SourceQueryError(err.reason). Every class carries .reason for the run log.
"""

//! Diesel table definitions shared by both backends: only types SQLite and PostgreSQL both map
//! (BigInt, Integer, Text, Bool, Date, Timestamp stored as UTC). Hand-kept in step with
//! `migrations/sqlite/` and `migrations/postgres/`; a test checks every column exists in both.

diesel::table! {
    firms (id) {
        id -> BigInt,
        name -> Text,
        time_zone -> Text,
        locale -> Text,
        sending_hour -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        firm_id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    clients (id) {
        id -> BigInt,
        firm_id -> BigInt,
        name -> Text,
        reference -> Nullable<Text>,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    contacts (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> BigInt,
        name -> Text,
        email -> Text,
        language -> Nullable<Text>,
        notifications_enabled -> Bool,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        unsubscribed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    access_tokens (id) {
        id -> BigInt,
        firm_id -> BigInt,
        token_hash -> Text,
        kind -> Text,
        user_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    categories (id) {
        id -> BigInt,
        firm_id -> BigInt,
        name -> Text,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    services (id) {
        id -> BigInt,
        firm_id -> BigInt,
        category_id -> Nullable<BigInt>,
        title -> Text,
        deliverable_type -> Text,
        lead_days -> Integer,
        reminder_days_before -> Nullable<Integer>,
        reminder_on_due_date -> Nullable<Bool>,
        reminder_every_days -> Nullable<Integer>,
        reminder_max_count -> Nullable<Integer>,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_items (id) {
        id -> BigInt,
        firm_id -> BigInt,
        service_id -> BigInt,
        kind -> Text,
        text -> Text,
        position -> Integer,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    missions (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> BigInt,
        name -> Text,
        start_date -> Date,
        end_date -> Nullable<Date>,
        status -> Text,
        signed_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mission_lines (id) {
        id -> BigInt,
        firm_id -> BigInt,
        mission_id -> BigInt,
        service_id -> BigInt,
        frequency -> Text,
        first_due_date -> Date,
        quantity -> Integer,
        rrule -> Nullable<Text>,
        working_day_adjustment -> Text,
        generated_through -> Nullable<Date>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> BigInt,
        mission_id -> BigInt,
        mission_line_id -> BigInt,
        service_item_id -> BigInt,
        copy_number -> Integer,
        due_date -> Date,
        created_on -> Date,
        title -> Text,
        status -> Text,
        assignee_id -> Nullable<BigInt>,
        completed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    information_requests (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> BigInt,
        mission_id -> BigInt,
        mission_line_id -> BigInt,
        service_item_id -> BigInt,
        copy_number -> Integer,
        due_date -> Date,
        created_on -> Date,
        text -> Text,
        status -> Text,
        answered_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    request_answers (id) {
        id -> BigInt,
        firm_id -> BigInt,
        request_id -> BigInt,
        contact_id -> Nullable<BigInt>,
        message -> Nullable<Text>,
        nothing_to_report -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> Nullable<BigInt>,
        url -> Text,
        events -> Text,
        secret -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        firm_id -> BigInt,
        delivery_uid -> Text,
        dedupe_key -> Text,
        kind -> Text,
        event -> Text,
        request_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        webhook_endpoint_id -> Nullable<BigInt>,
        target -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        leased_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> Timestamp,
        outcome -> Text,
        response_code -> Nullable<Integer>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    scheduler_runs (id) {
        id -> BigInt,
        kind -> Text,
        instance -> Text,
        as_of -> Nullable<Date>,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        created_count -> BigInt,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    journal_entries (id) {
        id -> BigInt,
        firm_id -> BigInt,
        occurred_at -> Timestamp,
        actor_kind -> Text,
        actor_user_id -> Nullable<BigInt>,
        actor_contact_id -> Nullable<BigInt>,
        kind -> Text,
        object_type -> Text,
        object_id -> BigInt,
        client_id -> Nullable<BigInt>,
        mission_id -> Nullable<BigInt>,
        before_status -> Nullable<Text>,
        after_status -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    answer_files (id) {
        id -> BigInt,
        firm_id -> BigInt,
        client_id -> BigInt,
        request_id -> BigInt,
        answer_id -> BigInt,
        uploaded_by_contact_id -> Nullable<BigInt>,
        name -> Text,
        size_bytes -> BigInt,
        media_type -> Text,
        sha256 -> Text,
        storage_key -> Text,
        created_at -> Timestamp,
    }
}

// The firm's day (issue 12, second half).
diesel::table! {
    calendar_feeds (id) {
        id -> BigInt,
        firm_id -> BigInt,
        user_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        token_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    staff_preferences (user_id) {
        user_id -> BigInt,
        firm_id -> BigInt,
        daily_digest -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    digests_sent (user_id, digest_date) {
        user_id -> BigInt,
        digest_date -> Date,
        firm_id -> BigInt,
        sent_at -> Timestamp,
    }
}

diesel::joinable!(users -> firms (firm_id));
diesel::joinable!(clients -> firms (firm_id));
diesel::joinable!(contacts -> firms (firm_id));
diesel::joinable!(contacts -> clients (client_id));
diesel::joinable!(access_tokens -> firms (firm_id));
diesel::joinable!(access_tokens -> users (user_id));
diesel::joinable!(access_tokens -> contacts (contact_id));
diesel::joinable!(categories -> firms (firm_id));
diesel::joinable!(services -> firms (firm_id));
diesel::joinable!(services -> categories (category_id));
diesel::joinable!(service_items -> firms (firm_id));
diesel::joinable!(service_items -> services (service_id));
diesel::joinable!(missions -> firms (firm_id));
diesel::joinable!(missions -> clients (client_id));
diesel::joinable!(mission_lines -> firms (firm_id));
diesel::joinable!(mission_lines -> missions (mission_id));
diesel::joinable!(mission_lines -> services (service_id));
diesel::joinable!(tasks -> firms (firm_id));
diesel::joinable!(tasks -> clients (client_id));
diesel::joinable!(tasks -> missions (mission_id));
diesel::joinable!(tasks -> mission_lines (mission_line_id));
diesel::joinable!(tasks -> service_items (service_item_id));
diesel::joinable!(information_requests -> firms (firm_id));
diesel::joinable!(information_requests -> clients (client_id));
diesel::joinable!(information_requests -> missions (mission_id));
diesel::joinable!(information_requests -> mission_lines (mission_line_id));
diesel::joinable!(information_requests -> service_items (service_item_id));
diesel::joinable!(request_answers -> firms (firm_id));
diesel::joinable!(request_answers -> information_requests (request_id));
diesel::joinable!(request_answers -> contacts (contact_id));
diesel::joinable!(webhook_endpoints -> firms (firm_id));
diesel::joinable!(webhook_endpoints -> clients (client_id));
diesel::joinable!(deliveries -> firms (firm_id));
diesel::joinable!(deliveries -> information_requests (request_id));
diesel::joinable!(deliveries -> contacts (contact_id));
diesel::joinable!(deliveries -> webhook_endpoints (webhook_endpoint_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::joinable!(journal_entries -> firms (firm_id));
diesel::joinable!(answer_files -> firms (firm_id));
diesel::joinable!(answer_files -> request_answers (answer_id));

diesel::table! {
    portal_sessions (id) {
        id -> BigInt,
        firm_id -> BigInt,
        contact_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(portal_sessions -> firms (firm_id));
diesel::joinable!(portal_sessions -> contacts (contact_id));
diesel::joinable!(calendar_feeds -> firms (firm_id));

// Replies by email (issue 15).
diesel::table! {
    reply_tokens (id) {
        id -> BigInt,
        firm_id -> BigInt,
        request_id -> BigInt,
        contact_id -> BigInt,
        delivery_id -> Nullable<BigInt>,
        token_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inbound_messages (id) {
        id -> BigInt,
        firm_id -> BigInt,
        message_key -> Text,
        source -> Text,
        request_id -> BigInt,
        contact_id -> BigInt,
        sender -> Text,
        subject -> Text,
        outcome -> Text,
        reason -> Nullable<Text>,
        authentication -> Text,
        raw_key -> Nullable<Text>,
        answer_id -> Nullable<BigInt>,
        received_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by_user_id -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    firms,
    users,
    clients,
    contacts,
    access_tokens,
    categories,
    services,
    service_items,
    missions,
    mission_lines,
    tasks,
    information_requests,
    request_answers,
    webhook_endpoints,
    deliveries,
    delivery_attempts,
    scheduler_runs,
    journal_entries,
    answer_files,
    portal_sessions,
    calendar_feeds,
    staff_preferences,
    digests_sent,
    reply_tokens,
    inbound_messages,
);

-- Sample schema for the rehearsal and the tests: an auto-shop SaaS where every
-- shop is a tenant. Tenant ids are text; child tables carry the tenant id and
-- reference their parent by (tenant_id, id) so a row cannot point across tenants.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id         bigserial PRIMARY KEY,
    tenant_id  text REFERENCES tenants (id),
    full_name  text NOT NULL,
    email      text,
    phone      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX customers_tenant_idx ON customers (tenant_id, full_name);

CREATE TABLE vehicles (
    id          bigserial PRIMARY KEY,
    tenant_id   text REFERENCES tenants (id),
    customer_id bigint NOT NULL,
    vin         text NOT NULL,
    make        text NOT NULL,
    model       text NOT NULL,
    model_year  integer CHECK (model_year BETWEEN 1900 AND 2100),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX vehicles_tenant_idx ON vehicles (tenant_id, customer_id);

CREATE TABLE services (
    id          bigserial PRIMARY KEY,
    tenant_id   text REFERENCES tenants (id),
    name        text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    UNIQUE (tenant_id, id)
);
CREATE INDEX services_tenant_idx ON services (tenant_id);

CREATE TABLE appointments (
    id           bigserial PRIMARY KEY,
    tenant_id    text REFERENCES tenants (id),
    vehicle_id   bigint NOT NULL,
    service_id   bigint NOT NULL,
    scheduled_at timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'done', 'cancelled')),
    notes        text,
    FOREIGN KEY (tenant_id, vehicle_id) REFERENCES vehicles (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id)
);
CREATE INDEX appointments_tenant_idx ON appointments (tenant_id, scheduled_at);

-- Three shops with a few customers, vehicles, services and appointments each.

INSERT INTO tenants (id, name) VALUES
    ('edgar-downtown', 'Edgar''s Auto Shop — Downtown'),
    ('edgar-airport',  'Edgar''s Auto Shop — Airport'),
    ('quickfix',       'QuickFix Garage');

INSERT INTO customers (tenant_id, full_name, email, phone)
SELECT t.id, format('Customer %s of %s', n, t.id), format('c%s@%s.example', n, t.id), format('+1-555-%04s', n)
FROM tenants t CROSS JOIN generate_series(1, 5) AS n;

INSERT INTO vehicles (tenant_id, customer_id, vin, make, model, model_year)
SELECT c.tenant_id, c.id, upper(md5(c.id::text || 'vin')), (ARRAY['Toyota', 'Ford', 'Honda'])[1 + c.id % 3], 'Model ' || c.id, 2010 + (c.id % 14)::int
FROM customers c;

INSERT INTO services (tenant_id, name, price_cents)
SELECT t.id, s.name, s.price
FROM tenants t CROSS JOIN (VALUES ('Oil change', 4999), ('Brake pads', 18999), ('Inspection', 2999)) AS s(name, price);

INSERT INTO appointments (tenant_id, vehicle_id, service_id, scheduled_at, notes)
SELECT v.tenant_id, v.id, s.id, now() + (v.id || ' days')::interval, 'Customer asked for a call first'
FROM vehicles v
JOIN LATERAL (SELECT id FROM services s WHERE s.tenant_id = v.tenant_id ORDER BY s.id LIMIT 1) s ON true;

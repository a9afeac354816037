-- PostgreSQL-dialect statements of the translation corpus, one per line. Each
-- runs on PostgreSQL as written and, translated, on MariaDB; results must agree.
SELECT id, name FROM customers ORDER BY id
SELECT "id", "name" FROM "customers" WHERE city = 'Paris' ORDER BY id
SELECT count(*) FROM orders
SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.amount > 100 ORDER BY o.id
SELECT COALESCE(city, 'unknown') FROM customers ORDER BY id
SELECT CASE WHEN qty > 3 THEN 'many' ELSE 'few' END FROM orders ORDER BY id
SELECT name FROM customers ORDER BY id LIMIT 3 OFFSET 2
SELECT name || ' from ' || city FROM customers ORDER BY id
SELECT upper(name), lower(name), length(name) FROM customers ORDER BY id
SELECT substring(name from 2 for 3) FROM customers ORDER BY id
SELECT substr(name, 2) FROM customers ORDER BY id
SELECT left(name, 2), right(name, 2) FROM customers ORDER BY id
SELECT trim(name), btrim(name) FROM customers ORDER BY id
SELECT replace(name, 'a', 'o') FROM customers ORDER BY id
SELECT position('a' in name) FROM customers ORDER BY id
SELECT strpos(name, 'a') FROM customers ORDER BY id
SELECT name ILIKE 'a%' FROM customers ORDER BY id
SELECT round(amount, 1), floor(amount), ceil(amount) FROM orders ORDER BY id
SELECT abs(qty - 3), mod(qty, 3), qty % 2 FROM orders ORDER BY id
SELECT power(qty, 2), sqrt(qty) FROM orders ORDER BY id
SELECT log(qty), ln(qty) FROM orders ORDER BY id
SELECT 7 / 2, 7.0 / 2
SELECT qty / 2 FROM orders ORDER BY id
SELECT greatest(qty, 3), least(qty, 3) FROM orders ORDER BY id
SELECT greatest(qty, NULL), least(qty, NULL) FROM orders ORDER BY id
SELECT qty::text FROM orders ORDER BY id
SELECT CAST(amount AS integer) FROM orders ORDER BY id
SELECT amount::numeric(10, 1) FROM orders ORDER BY id
SELECT CAST('2024-03-01' AS date)
SELECT placed_at::date FROM orders ORDER BY id
SELECT to_char(placed_at, 'YYYY-MM') FROM orders ORDER BY id
SELECT extract(year FROM placed_at), extract(month FROM placed_at) FROM orders ORDER BY id
SELECT date_trunc('month', placed_at) FROM orders ORDER BY id
SELECT signup + 7 FROM customers ORDER BY id
SELECT signup + INTERVAL '1 month' FROM customers ORDER BY id
SELECT DATE '2024-12-31' - signup FROM customers ORDER BY id
SELECT string_agg(name, ',' ORDER BY name) FROM customers
SELECT customer_id, string_agg(id::text, ',' ORDER BY id) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT vip, count(*) FROM customers GROUP BY vip ORDER BY vip
SELECT name FROM customers WHERE vip ORDER BY id
SELECT name FROM customers WHERE NOT vip ORDER BY id
SELECT id, city FROM customers ORDER BY city NULLS FIRST, id
SELECT id, city FROM customers ORDER BY city DESC NULLS LAST, id
SELECT id FROM orders WHERE note IS NULL ORDER BY id
SELECT id FROM orders WHERE amount BETWEEN 50 AND 150 ORDER BY id
SELECT id FROM orders WHERE status IN ('paid', 'shipped') ORDER BY id
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE vip) ORDER BY id
SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 200) ORDER BY id
SELECT id FROM customers UNION SELECT customer_id FROM orders ORDER BY 1
SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id HAVING sum(amount) > 200 ORDER BY customer_id
SELECT id, sum(amount) OVER (PARTITION BY customer_id ORDER BY id) FROM orders ORDER BY id
SELECT id, row_number() OVER (ORDER BY amount DESC, id) FROM orders ORDER BY id
SELECT id, lag(amount) OVER (ORDER BY id) FROM orders ORDER BY id
SELECT count(DISTINCT status) FROM orders
SELECT nullif(qty, 1) FROM orders ORDER BY id
SELECT 'it''s'
SELECT true, false, NULL IS NULL
SELECT id FROM orders WHERE placed_at >= '2024-02-01' ORDER BY id
SELECT md5(name) FROM customers ORDER BY id
SELECT repeat('ab', qty) FROM orders ORDER BY id
SELECT sign(qty - 2) FROM orders ORDER BY id
SELECT trunc(amount) FROM orders ORDER BY id
SELECT id, amount FROM orders ORDER BY amount DESC, id FETCH FIRST 3 ROWS ONLY
SELECT count(*) FILTER (WHERE qty > 2) FROM orders
SELECT id FROM orders WHERE status <> 'paid' ORDER BY id
SELECT concat(name, '!') FROM customers ORDER BY id
SELECT initcap(name) FROM customers ORDER BY id
SELECT split_part('a,b,c', ',', 2)
SELECT lpad(name, 8, '*') FROM customers ORDER BY id
SELECT o.id, c.city FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city IS NOT NULL ORDER BY o.id
SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id AND c.vip ORDER BY o.id
SELECT c.id, o.id FROM customers c CROSS JOIN orders o WHERE o.id < 3 ORDER BY c.id, o.id
SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name ORDER BY c.id
SELECT city, count(*) FROM customers WHERE city IS NOT NULL GROUP BY city HAVING count(*) > 1 ORDER BY city
SELECT status, min(amount), max(amount) FROM orders GROUP BY status ORDER BY status
SELECT status, avg(qty) FROM orders GROUP BY status ORDER BY status
SELECT sum(qty), count(note) FROM orders
SELECT id, amount * qty AS total FROM orders ORDER BY total DESC, id
SELECT id FROM orders WHERE amount > (SELECT avg(amount) FROM orders) ORDER BY id
SELECT id FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE vip) ORDER BY id
SELECT t.status, t.n FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) t ORDER BY t.status
WITH totals AS (SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id) SELECT customer_id, s FROM totals WHERE s > 150 ORDER BY customer_id
WITH a AS (SELECT id FROM customers WHERE vip), b AS (SELECT customer_id FROM orders) SELECT count(*) FROM b WHERE customer_id IN (SELECT id FROM a)
SELECT id FROM orders WHERE status = 'paid' AND qty > 2 OR status = 'new' ORDER BY id
SELECT id FROM customers WHERE name IN ('Ana', 'Eve', 'Zed') ORDER BY id
SELECT id FROM customers WHERE name NOT LIKE 'A%' ORDER BY id
SELECT id FROM customers WHERE city IS NULL OR city = 'Lima' ORDER BY id
SELECT CASE city WHEN 'Paris' THEN 'FR' WHEN 'Berlin' THEN 'DE' ELSE 'other' END FROM customers ORDER BY id
SELECT id, qty FROM orders ORDER BY qty DESC, id LIMIT 5
SELECT count(*) FROM (SELECT DISTINCT customer_id FROM orders) t
SELECT id FROM customers WHERE signup < '2024-05-01' ORDER BY id
SELECT id FROM customers WHERE signup BETWEEN '2024-02-01' AND '2024-06-30' ORDER BY id
SELECT extract(month FROM signup), count(*) FROM customers GROUP BY extract(month FROM signup) ORDER BY 1
SELECT extract(day FROM signup) FROM customers ORDER BY id
SELECT extract(hour FROM placed_at), extract(minute FROM placed_at) FROM orders ORDER BY id
SELECT extract(dow FROM signup) FROM customers ORDER BY id
SELECT extract(quarter FROM signup) FROM customers ORDER BY id
SELECT current_date IS NOT NULL
SELECT now() IS NOT NULL
SELECT to_char(signup, 'DD/MM/YYYY') FROM customers ORDER BY id
SELECT to_char(placed_at, 'HH24:MI') FROM orders ORDER BY id
SELECT date_trunc('year', placed_at) FROM orders ORDER BY id
SELECT date_trunc('day', placed_at) FROM orders ORDER BY id
SELECT placed_at + INTERVAL '2 hours' FROM orders ORDER BY id
SELECT age(DATE '2024-12-31', signup) IS NOT NULL FROM customers ORDER BY id
SELECT char_length(name), octet_length(name) FROM customers ORDER BY id
SELECT upper(left(name, 1)) FROM customers ORDER BY id
SELECT trim(both 'x' from 'xxhixx')
SELECT trim(leading '0' from '00123')
SELECT lower('ÀB'), upper('àb')
SELECT 'a' = 'a', 'a' < 'b'
SELECT 5 BETWEEN 1 AND 10
SELECT 3 IN (1, 2, 3)
SELECT round(2.5), round(-2.5), round(1.25, 1)
SELECT ceiling(1.2), floor(-1.2)
SELECT 10 % 3, -10 % 3
SELECT power(2, 10)
SELECT CAST(1.9 AS integer)
SELECT CAST(-1.5 AS integer)
SELECT CAST(qty AS numeric(5, 2)) FROM orders ORDER BY id
SELECT CAST(amount AS varchar(10)) FROM orders ORDER BY id
SELECT CAST(qty AS text) || 'x' FROM orders ORDER BY id
SELECT 1 = 1 AND 0 = 0
SELECT NULL = NULL, NULL IS NOT DISTINCT FROM NULL
SELECT id FROM orders WHERE note IS NOT DISTINCT FROM NULL ORDER BY id
SELECT id, dense_rank() OVER (ORDER BY status) FROM orders ORDER BY id
SELECT id, ntile(3) OVER (ORDER BY id) FROM orders ORDER BY id
SELECT id, first_value(amount) OVER (PARTITION BY customer_id ORDER BY id) FROM orders ORDER BY id
SELECT id, count(*) OVER (PARTITION BY status) FROM orders ORDER BY id
SELECT id, avg(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM orders ORDER BY id
SELECT id, rank() OVER (PARTITION BY status ORDER BY qty) FROM orders ORDER BY id
SELECT id, lead(amount) OVER (ORDER BY id) FROM orders ORDER BY id
SELECT customer_id, string_agg(DISTINCT status, ',' ORDER BY status) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT string_agg(qty::text, ',' ORDER BY id) FROM orders WHERE customer_id = 1
SELECT id FROM customers WHERE id = 3 UNION SELECT id FROM customers WHERE id = 5 ORDER BY id
SELECT id FROM customers WHERE vip UNION ALL SELECT id FROM customers WHERE city = 'Paris' ORDER BY id
SELECT id FROM customers EXCEPT SELECT customer_id FROM orders WHERE qty > 3 ORDER BY id
SELECT id FROM customers INTERSECT SELECT customer_id FROM orders WHERE qty > 3 ORDER BY id
SELECT 1 AS x UNION SELECT 2 ORDER BY x
SELECT coalesce(note, 'none') FROM orders ORDER BY id
SELECT id FROM orders WHERE note LIKE 'note 1%' ORDER BY id
SELECT abs(-7), sign(-7)
SELECT max(amount) - min(amount) FROM orders
SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.vip)
SELECT bool_and(vip), bool_or(vip) FROM customers
SELECT id, vip::int FROM customers ORDER BY id

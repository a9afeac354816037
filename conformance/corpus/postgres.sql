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

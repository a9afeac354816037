-- MySQL-dialect statements of the translation corpus, one per line. Each runs
-- on MariaDB as written and, translated, on PostgreSQL; results must agree.
-- Tables: customers(id, name, city, signup, vip), orders(id, customer_id,
-- amount, qty, status, placed_at, note). Every ORDER BY is total.
SELECT id, name FROM customers ORDER BY id
SELECT `id`, `name` FROM `customers` WHERE `city` = 'Paris' ORDER BY `id`
SELECT count(*) FROM orders
SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT status, avg(qty) FROM orders GROUP BY status ORDER BY status
SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.amount > 100 ORDER BY o.id
SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name ORDER BY c.id
SELECT IFNULL(city, 'unknown') FROM customers ORDER BY id
SELECT COALESCE(note, status) FROM orders ORDER BY id
SELECT IF(amount > 100, 'big', 'small') FROM orders ORDER BY id
SELECT CASE WHEN qty > 3 THEN 'many' WHEN qty > 1 THEN 'some' ELSE 'one' END FROM orders ORDER BY id
SELECT name FROM customers ORDER BY id LIMIT 3
SELECT name FROM customers ORDER BY id LIMIT 2, 3
SELECT name FROM customers ORDER BY id LIMIT 3 OFFSET 2
SELECT UPPER(name), LOWER(name) FROM customers ORDER BY id
SELECT CONCAT(name, ' from ', city) FROM customers ORDER BY id
SELECT CONCAT_WS('-', name, city) FROM customers ORDER BY id
SELECT LENGTH(name), CHAR_LENGTH(name) FROM customers ORDER BY id
SELECT SUBSTRING(name, 2, 3) FROM customers ORDER BY id
SELECT SUBSTR(name, -2) FROM customers ORDER BY id
SELECT SUBSTRING(name, -3, 2) FROM customers ORDER BY id
SELECT LEFT(name, 2), RIGHT(name, 2) FROM customers ORDER BY id
SELECT TRIM(name), LTRIM(name), RTRIM(name) FROM customers ORDER BY id
SELECT REPLACE(name, 'a', 'o') FROM customers ORDER BY id
SELECT REVERSE(name) FROM customers ORDER BY id
SELECT LPAD(name, 8, '*'), RPAD(name, 8, '*') FROM customers ORDER BY id
SELECT LOCATE('a', name) FROM customers ORDER BY id
SELECT INSTR(name, 'a') FROM customers ORDER BY id
SELECT name LIKE 'A%' FROM customers ORDER BY id
SELECT name FROM customers WHERE name LIKE '%a%' ORDER BY id
SELECT ROUND(amount, 1), FLOOR(amount), CEIL(amount) FROM orders ORDER BY id
SELECT ABS(qty - 3), MOD(qty, 3), qty % 2 FROM orders ORDER BY id
SELECT POW(qty, 2), SQRT(qty) FROM orders ORDER BY id
SELECT LOG(qty), LN(qty), LOG10(qty), LOG2(qty) FROM orders ORDER BY id
SELECT EXP(1), PI()
SELECT 7 / 2, 7 DIV 2, 7 % 2
SELECT qty / 2 FROM orders ORDER BY id
SELECT GREATEST(qty, 3), LEAST(qty, 3) FROM orders ORDER BY id
SELECT GREATEST(qty, NULL), LEAST(qty, NULL) FROM orders ORDER BY id
SELECT CAST(qty AS CHAR) FROM orders ORDER BY id
SELECT CAST(amount AS SIGNED) FROM orders ORDER BY id
SELECT CAST('42' AS UNSIGNED)
SELECT CAST(amount AS DECIMAL(10, 1)) FROM orders ORDER BY id
SELECT CAST('2024-03-01' AS DATE)
SELECT CAST(placed_at AS DATE) FROM orders ORDER BY id
SELECT DATE_FORMAT(placed_at, '%Y-%m') FROM orders ORDER BY id
SELECT DATE_FORMAT(placed_at, '%Y-%m-%d %H:%i:%s') FROM orders ORDER BY id
SELECT DATE_FORMAT(signup, '%d/%m/%Y') FROM customers ORDER BY id
SELECT YEAR(placed_at), MONTH(placed_at), DAY(placed_at) FROM orders ORDER BY id
SELECT HOUR(placed_at), MINUTE(placed_at) FROM orders ORDER BY id
SELECT DATE_ADD(signup, INTERVAL 7 DAY) FROM customers ORDER BY id
SELECT DATE_SUB(signup, INTERVAL 1 MONTH) FROM customers ORDER BY id
SELECT signup + INTERVAL 1 YEAR FROM customers ORDER BY id
SELECT DATEDIFF('2024-12-31', signup) FROM customers ORDER BY id
SELECT DAYOFWEEK(signup) FROM customers ORDER BY id
SELECT LAST_DAY(signup) FROM customers ORDER BY id
SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR ',') FROM customers
SELECT customer_id, GROUP_CONCAT(id ORDER BY id) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT vip, count(*) FROM customers GROUP BY vip ORDER BY vip
SELECT name FROM customers WHERE vip ORDER BY id
SELECT name FROM customers WHERE vip = TRUE ORDER BY id
SELECT name FROM customers WHERE NOT vip ORDER BY id
SELECT id, city FROM customers ORDER BY city, id
SELECT id, city FROM customers ORDER BY city DESC, id
SELECT id, note FROM orders ORDER BY note IS NULL, note, id
SELECT id FROM orders WHERE note IS NULL ORDER BY id
SELECT id FROM orders WHERE amount BETWEEN 50 AND 150 ORDER BY id
SELECT id FROM orders WHERE status IN ('paid', 'shipped') ORDER BY id
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE vip) ORDER BY id
SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 200) ORDER BY id
SELECT (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c ORDER BY id
SELECT id FROM customers UNION SELECT customer_id FROM orders ORDER BY 1
SELECT id FROM customers UNION ALL SELECT customer_id FROM orders ORDER BY 1
SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id HAVING sum(amount) > 200 ORDER BY customer_id
SELECT id, amount, SUM(amount) OVER (PARTITION BY customer_id ORDER BY id) FROM orders ORDER BY id
SELECT id, ROW_NUMBER() OVER (ORDER BY amount DESC, id) FROM orders ORDER BY id
SELECT id, RANK() OVER (PARTITION BY status ORDER BY qty) FROM orders ORDER BY id
SELECT id, LAG(amount) OVER (ORDER BY id), LEAD(amount) OVER (ORDER BY id) FROM orders ORDER BY id
SELECT count(DISTINCT status) FROM orders
SELECT DISTINCT status FROM orders ORDER BY status
SELECT max(placed_at), min(placed_at) FROM orders
SELECT sum(qty * amount) FROM orders
SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY n DESC, status
SELECT NULLIF(qty, 1) FROM orders ORDER BY id
SELECT 'it''s', "double quoted string"
SELECT 1 + 1, 2 * 3.5, 10 - 4
SELECT TRUE, FALSE, NULL IS NULL
SELECT id FROM orders WHERE placed_at >= '2024-02-01' ORDER BY id
SELECT id FROM orders WHERE DATE(placed_at) = '2024-01-15' ORDER BY id
SELECT MD5(name) FROM customers ORDER BY id
SELECT STRCMP(name, 'Bob') FROM customers ORDER BY id
SELECT REPEAT('ab', qty) FROM orders ORDER BY id
SELECT SPACE(2)
SELECT HEX(255), CONV('ff', 16, 10)
SELECT ASCII(name), ORD(name) FROM customers ORDER BY id
SELECT FIELD(status, 'new', 'paid', 'shipped') FROM orders ORDER BY id
SELECT ELT(2, 'a', 'b', 'c')
SELECT IFNULL(NULL, NULL)
SELECT SIGN(qty - 2) FROM orders ORDER BY id
SELECT TRUNCATE(amount, 0) FROM orders ORDER BY id

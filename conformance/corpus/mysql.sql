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
SELECT o.id, c.city FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city IS NOT NULL ORDER BY o.id
SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id AND c.vip ORDER BY o.id
SELECT c.id, o.id FROM customers c CROSS JOIN orders o WHERE o.id < 3 ORDER BY c.id, o.id
SELECT a.id, b.id FROM customers a JOIN customers b ON a.city = b.city AND a.id < b.id ORDER BY a.id, b.id
SELECT city, count(*) FROM customers GROUP BY city ORDER BY city
SELECT city, count(*) FROM customers WHERE city IS NOT NULL GROUP BY city HAVING count(*) > 1 ORDER BY city
SELECT status, min(amount), max(amount) FROM orders GROUP BY status ORDER BY status
SELECT customer_id, avg(amount) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT sum(qty), count(note) FROM orders
SELECT count(*) FROM orders WHERE note IS NOT NULL
SELECT id, amount * qty AS total FROM orders ORDER BY total DESC, id
SELECT id FROM orders WHERE amount > (SELECT avg(amount) FROM orders) ORDER BY id
SELECT id FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE vip) ORDER BY id
SELECT t.status, t.n FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) t ORDER BY t.status
SELECT max(n) FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) t
SELECT id FROM orders WHERE status = 'paid' AND qty > 2 OR status = 'new' ORDER BY id
SELECT id FROM orders WHERE NOT (status = 'paid') ORDER BY id
SELECT id FROM orders WHERE status <> 'paid' ORDER BY id
SELECT id FROM orders WHERE status != 'paid' ORDER BY id
SELECT id FROM customers WHERE name IN ('Ana', 'Eve', 'Zed') ORDER BY id
SELECT id FROM customers WHERE name NOT LIKE 'A%' ORDER BY id
SELECT id FROM customers WHERE city IS NULL OR city = 'Lima' ORDER BY id
SELECT COALESCE(city, name) FROM customers ORDER BY id
SELECT CASE city WHEN 'Paris' THEN 'FR' WHEN 'Berlin' THEN 'DE' ELSE 'other' END FROM customers ORDER BY id
SELECT CASE WHEN city IS NULL THEN 0 ELSE 1 END FROM customers ORDER BY id
SELECT id, qty FROM orders ORDER BY qty DESC, id LIMIT 5
SELECT id FROM orders ORDER BY amount, id LIMIT 1
SELECT count(*) FROM (SELECT DISTINCT customer_id FROM orders) t
SELECT id FROM customers WHERE signup < '2024-05-01' ORDER BY id
SELECT id FROM customers WHERE signup BETWEEN '2024-02-01' AND '2024-06-30' ORDER BY id
SELECT MONTH(signup), count(*) FROM customers GROUP BY MONTH(signup) ORDER BY 1
SELECT YEAR(signup) FROM customers ORDER BY id
SELECT id FROM orders WHERE YEAR(placed_at) = 2024 AND MONTH(placed_at) = 2 ORDER BY id
SELECT CURDATE() IS NOT NULL
SELECT NOW() IS NOT NULL
SELECT DATE(placed_at) FROM orders ORDER BY id
SELECT TIME(placed_at) FROM orders ORDER BY id
SELECT DAYNAME(signup) FROM customers ORDER BY id
SELECT MONTHNAME(signup) FROM customers ORDER BY id
SELECT DAYOFMONTH(signup), DAYOFYEAR(signup) FROM customers ORDER BY id
SELECT WEEKDAY(signup) FROM customers ORDER BY id
SELECT QUARTER(signup) FROM customers ORDER BY id
SELECT UNIX_TIMESTAMP('2024-01-01 00:00:00')
SELECT STR_TO_DATE('2024-03-05', '%Y-%m-%d')
SELECT TIMESTAMPDIFF(DAY, '2024-01-01', signup) FROM customers ORDER BY id
SELECT DATE_FORMAT(placed_at, '%H:%i') FROM orders ORDER BY id
SELECT DATE_FORMAT(signup, '%M %Y') FROM customers ORDER BY id
SELECT CHAR_LENGTH(CONCAT(name, city)) FROM customers ORDER BY id
SELECT SUBSTRING_INDEX('a.b.c', '.', 2)
SELECT UPPER(LEFT(name, 1)) FROM customers ORDER BY id
SELECT CONCAT(UPPER(SUBSTRING(name, 1, 1)), LOWER(SUBSTRING(name, 2))) FROM customers ORDER BY id
SELECT TRIM(BOTH 'x' FROM 'xxhixx')
SELECT TRIM(LEADING '0' FROM '00123')
SELECT LOWER('ÀB'), UPPER('àb')
SELECT 'a' = 'a', 'a' < 'b'
SELECT 5 BETWEEN 1 AND 10
SELECT 3 IN (1, 2, 3)
SELECT ROUND(2.5), ROUND(-2.5), ROUND(1.25, 1)
SELECT CEILING(1.2), FLOOR(-1.2)
SELECT 10 % 3, -10 % 3
SELECT POWER(2, 10)
SELECT CAST(1.9 AS SIGNED)
SELECT CAST(-1.5 AS SIGNED)
SELECT CAST('12abc' AS SIGNED)
SELECT CAST(qty AS DECIMAL(5, 2)) FROM orders ORDER BY id
SELECT CAST(amount AS CHAR(10)) FROM orders ORDER BY id
SELECT CONVERT(qty, CHAR) FROM orders ORDER BY id
SELECT 1 = 1 AND 0 = 0
SELECT NULL = NULL, NULL <=> NULL
SELECT id FROM orders WHERE note <=> NULL ORDER BY id
SELECT id, DENSE_RANK() OVER (ORDER BY status) FROM orders ORDER BY id
SELECT id, NTILE(3) OVER (ORDER BY id) FROM orders ORDER BY id
SELECT id, FIRST_VALUE(amount) OVER (PARTITION BY customer_id ORDER BY id) FROM orders ORDER BY id
SELECT id, COUNT(*) OVER (PARTITION BY status) FROM orders ORDER BY id
SELECT id, AVG(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM orders ORDER BY id
SELECT customer_id, GROUP_CONCAT(DISTINCT status ORDER BY status) FROM orders GROUP BY customer_id ORDER BY customer_id
SELECT GROUP_CONCAT(qty ORDER BY id) FROM orders WHERE customer_id = 1
SELECT id FROM customers WHERE id = 3 UNION SELECT id FROM customers WHERE id = 5 ORDER BY id
SELECT id FROM customers WHERE vip UNION ALL SELECT id FROM customers WHERE city = 'Paris' ORDER BY id
SELECT 1 AS x UNION SELECT 2 ORDER BY x

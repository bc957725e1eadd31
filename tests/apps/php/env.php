<?php
/* certgate's real-application tests (tests/integration/test_real_apps.py):
 * what PHP made of the request, as JSON. $_SERVER whole (the FastCGI
 * parameters as PHP exposes them), $_GET, $_POST, and for each uploaded
 * file its name, type, size, error code and the MD5 of what PHP stored. */
header('Content-Type: application/json');
$files = array();
foreach ($_FILES as $field => $f) {
	$files[$field] = array(
		'name' => $f['name'],
		'type' => $f['type'],
		'size' => $f['size'],
		'error' => $f['error'],
		'md5' => $f['error'] === UPLOAD_ERR_OK ? md5_file($f['tmp_name']) : null,
	);
}
echo json_encode(array(
	'sapi' => PHP_SAPI,
	'server' => $_SERVER,
	'get' => $_GET,
	'post' => $_POST,
	'files' => (object)$files,
), JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";

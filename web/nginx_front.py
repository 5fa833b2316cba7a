"""The nginx front of the web app (web/nginx/default.conf.template): the template rendered for
a port and an upstream, and a local nginx process for benchmarks and tests (Debian's
`nginx-light`, `make nginx`)."""
import os
import shutil
import string
import subprocess

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nginx',
                        'default.conf.template')
# The official image's main config around conf.d/, with every path in one folder.
_MAIN = '''worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/default.conf;
}}
'''


def render(port, upstream):
    """The server block for `listen port` in front of `upstream` ('host:port'), as envsubst
    renders it in the nginx image (nginx's own $variables are kept)."""
    with open(TEMPLATE, encoding='utf-8') as f:
        return string.Template(f.read()).safe_substitute(NGINX_PORT=str(port),
                                                         WEB_UPSTREAM=upstream)


def executable():
    """The nginx binary on PATH (or in /usr/sbin), or None."""
    return shutil.which('nginx') or shutil.which('nginx', path='/usr/sbin:/sbin')


def start_local(folder, port, upstream, log):
    """Starts nginx in the foreground with its config and files in `folder`.

    Returns:
      the subprocess.Popen (stop it with terminate()).
    Raises:
      FileNotFoundError: nginx is not installed.
    """
    binary = executable()
    if binary is None:
        raise FileNotFoundError('nginx is not installed (make nginx: apt-get install nginx-light)')
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o777)  # its workers may run as another user
    with open(os.path.join(folder, 'default.conf'), 'w', encoding='utf-8') as f:
        f.write(render(port, upstream).replace('/dev/stdout', os.path.join(folder, 'access.log')))
    main = os.path.join(folder, 'nginx.conf')
    with open(main, 'w', encoding='utf-8') as f:
        f.write(_MAIN.format(folder=folder))
    return subprocess.Popen([binary, '-p', folder, '-c', main, '-g', 'daemon off;'],
                            stdout=log, stderr=subprocess.STDOUT)

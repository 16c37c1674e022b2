package service

import "strings"

// cpeVendor is the CPE 2.3 vendor and product fields ("vendor:product")
// of product, from the NVD's CPE dictionary; "" for a product not known.
// A switch, not a map: nothing is built at package init.
func cpeVendor(product string) string {
	switch product {
	case "OpenSSH":
		return "openbsd:openssh"
	case "Dropbear sshd":
		return "dropbear_ssh_project:dropbear_ssh"
	case "nginx":
		return "f5:nginx"
	case "Apache httpd":
		return "apache:http_server"
	case "lighttpd":
		return "lighttpd:lighttpd"
	case "Redis":
		return "redis:redis"
	case "memcached":
		return "memcached:memcached"
	case "PostgreSQL":
		return "postgresql:postgresql"
	case "MariaDB":
		return "mariadb:mariadb"
	case "MySQL":
		return "oracle:mysql"
	case "Mosquitto":
		return "eclipse:mosquitto"
	case "vsftpd":
		return "beasts:vsftpd"
	case "ProFTPD":
		return "proftpd:proftpd"
	case "Pure-FTPd":
		return "pureftpd:pure-ftpd"
	case "Dovecot":
		return "dovecot:dovecot"
	case "Exim":
		return "exim:exim"
	case "Postfix":
		return "postfix:postfix"
	case "OpenSMTPD":
		return "openbsd:opensmtpd"
	case "Sendmail":
		return "sendmail:sendmail"
	case "OpenLDAP":
		return "openldap:openldap"
	case "dnsmasq":
		return "thekelleys:dnsmasq"
	case "BIND":
		return "isc:bind"
	case "Unbound":
		return "nlnetlabs:unbound"
	case "rsync":
		return "samba:rsync"
	case "ntpsec":
		return "ntpsec:ntpsec"
	case "ntpd":
		return "ntp:ntp"
	case "Net-SNMP":
		return "net-snmp:net-snmp"
	case "MongoDB":
		return "mongodb:mongodb"
	case "Elasticsearch":
		return "elastic:elasticsearch"
	case "OpenSearch":
		return "amazon:opensearch"
	case "Apache ZooKeeper":
		return "apache:zookeeper"
	case "Apache Kafka":
		return "apache:kafka"
	case "Apache Cassandra":
		return "apache:cassandra"
	case "Microsoft SQL Server":
		return "microsoft:sql_server"
	case "RabbitMQ":
		return "vmware:rabbitmq"
	case "NATS Server":
		return "linuxfoundation:nats-server"
	case "Consul":
		return "hashicorp:consul"
	case "etcd":
		return "etcd-io:etcd"
	case "Kubernetes API server":
		return "kubernetes:kubernetes"
	case "Docker Engine API":
		return "docker:engine"
	case "Microsoft Active Directory":
		return "microsoft:active_directory"
	}
	return ""
}

// cpeFor is the CPE 2.3 formatted string (NISTIR 7695 §6.2) of product
// at version ("*", any, when not known); "" for a product not in the
// table.
func cpeFor(product, version string) string {
	vp := cpeVendor(product)
	if vp == "" {
		return ""
	}
	v := "*"
	if version != "" {
		v = cpeEscape(version)
	}
	return "cpe:2.3:a:" + vp + ":" + v + ":*:*:*:*:*:*:*"
}

// cpeEscape quotes the characters a formatted string's attribute may not
// hold as they are (NISTIR 7695 §6.2.2.2): all but letters, digits,
// '_', '-' and '.'.
func cpeEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('\\')
			b.WriteRune(c)
		}
	}
	return strings.ToLower(b.String())
}

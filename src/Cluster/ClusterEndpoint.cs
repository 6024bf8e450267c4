using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ZeroFL.Cluster;

/// <summary>
/// A silo's address as the command line gives it, HOST:PORT. A silo listens on PORT for other
/// silos and on PORT + 1 for the coordinator (Orleans' gateway); <c>--join</c> and <c>--cluster</c>
/// both take a silo's HOST:PORT.
/// </summary>
/// <param name="Address">The host's IP address.</param>
/// <param name="Port">The silo port.</param>
public sealed record ClusterEndpoint(IPAddress Address, int Port)
{
    /// <summary>The Orleans cluster and service id every ZeroFL silo and coordinator uses.</summary>
    public const string ClusterId = "zerofl";

    /// <summary>Silo to silo.</summary>
    public IPEndPoint Silo => new(Address, Port);

    /// <summary>Coordinator to silo (the gateway).</summary>
    public IPEndPoint Gateway => new(Address, Port + 1);

    /// <summary>HOST:PORT as given.</summary>
    public override string ToString() => $"{Address}:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses HOST:PORT (a name is resolved, IPv4 first); <see cref="ArgumentException"/> with one line when it is not one.</summary>
    public static ClusterEndpoint Parse(string text, string option)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port < 1 || port > 65534)
        {
            throw new ArgumentException($"{option} must be HOST:PORT with PORT in [1, 65534] (the silo uses PORT and PORT + 1), got '{text}'");
        }
        string host = text[..colon].Trim('[', ']');
        if (!IPAddress.TryParse(host, out var address))
        {
            try
            {
                var addresses = Dns.GetHostAddresses(host);
                address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            }
            catch (SocketException)
            {
                address = null;
            }
            if (address is null)
            {
                throw new ArgumentException($"{option}: host '{host}' does not resolve");
            }
        }
        return new ClusterEndpoint(address, port);
    }
}

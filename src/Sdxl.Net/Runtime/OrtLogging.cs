using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace Sdxl.Net.Runtime;

/// <summary>
/// Routes ONNX Runtime's own log (its process-wide environment's) to <see cref="ILogger"/>: by default ONNX Runtime
/// writes multi-line records straight to the process's stderr, which breaks the one-line-per-failure contract of
/// hosts and of the CLI. The environment is created once per process, before the first session; the log goes to the
/// logger factory of the most recently built pipeline (category <c>Sdxl.Net.OnnxRuntime</c>).
/// </summary>
internal static class OrtLogging
{
    private static readonly object Gate = new();

    // Kept in a static field: the native side holds a pointer to it for the life of the process.
    private static readonly DOrtLoggingFunction Callback = Forward;
    private static ILogger _logger = NullLogger.Instance;
    private static bool _attempted;

    /// <summary>Whether ONNX Runtime's log goes to <see cref="ILogger"/> (false when the host created the environment first).</summary>
    public static bool IsRouted { get; private set; }

    /// <summary>Creates the environment with the forwarding logger if nobody has yet, and points it at <paramref name="factory"/>.</summary>
    public static void Route(ILoggerFactory? factory)
    {
        lock (Gate)
        {
            if (factory is not null)
            {
                _logger = factory.CreateLogger("Sdxl.Net.OnnxRuntime");
            }

            if (_attempted)
            {
                return;
            }

            _attempted = true;
            try
            {
                if (OrtEnv.IsCreated)
                {
                    // The host configured ONNX Runtime itself; its choice of logging stands.
                    return;
                }
            }
            catch (Exception e) when (NativeRuntime.IsMissingNativeLibrary(e))
            {
                // Creating the environment loads the native library: when it is missing, say which package brings it.
                _attempted = false;
                throw NativeRuntime.Missing(e);
            }

            var options = new EnvironmentCreationOptions
            {
                logId = "Sdxl.Net",
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                loggingFunction = Callback,
            };
            try
            {
                OrtEnv.CreateInstanceWithOptions(ref options);
                IsRouted = true;
            }
            catch (OnnxRuntimeException)
            {
                // Created concurrently by other code between the check and here: nothing to route.
            }
            catch (Exception e) when (NativeRuntime.IsMissingNativeLibrary(e))
            {
                _attempted = false;
                throw NativeRuntime.Missing(e);
            }
        }
    }

    private static void Forward(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        var level = severity switch
        {
            OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
            _ => LogLevel.Critical,
        };
        try
        {
            var logger = _logger;
            if (logger.IsEnabled(level))
            {
                logger.Log(level, "ONNX Runtime [{Category}] {Message} ({Location})", category, message, codeLocation);
            }
        }
        catch (Exception)
        {
            // A logger that throws must not unwind into native code.
        }
    }
}
